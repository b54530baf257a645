// The developer portal as served: generated from the protos with public
// operations only. Every served file is fetched and searched for the names
// of private services and methods (taken from the descriptors in gen/,
// the descriptor set inside the catalogue decoded too); every answer has
// the strict CSP; the OpenAPI document passes `redocly lint`.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { services } from "../../src/app/modules.js";
import type { Catalogue } from "../../src/developer/catalogue.js";
import { portalCsp } from "../../src/developer/index.js";
import { policyOf, Visibility } from "../../src/policy/method-policy.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";

const manifest = JSON.parse(readFileSync("gen/developer/site/manifest.json", "utf8")) as Record<string, unknown>;

/** Names of private services (every method private) and private methods, from the generated descriptors. */
function privateNames(): string[] {
  const names = new Set<string>();
  for (const service of services) {
    const hidden = service.methods.filter((m) => policyOf(m)?.visibility === Visibility.PRIVATE);
    for (const m of hidden) names.add(m.name);
    if (hidden.length === service.methods.length) names.add(service.name);
  }
  return [...names];
}

describe.each(databaseKinds)("developer portal assets on %s", (kind) => {
  let t: TestBroker;
  beforeAll(async () => {
    t = await startTestBroker(kind);
  });
  afterAll(() => t.stop());

  it("ships no private service or method name in any served file", async () => {
    const hidden = privateNames();
    expect(hidden).toEqual(expect.arrayContaining(["TenantService", "CreateTenant", "RotateSigningKeys"]));
    const paths = Object.keys(manifest);
    expect(paths).toEqual(
      expect.arrayContaining(["/developer", "/developer/openapi.json", "/developer/assets/portal.js"]),
    );
    for (const p of paths) {
      const response = await fetch(`${t.broker.url}${p}`);
      expect(response.status, p).toBe(200);
      let text = await response.text();
      if (p === "/developer/catalogue.json") {
        // The descriptor set is base64: decode it so names inside it are seen.
        text += Buffer.from((JSON.parse(text) as Catalogue).descriptorSet, "base64").toString("latin1");
      }
      for (const name of hidden) expect(text.includes(name), `${name} in ${p}`).toBe(false);
    }
    // And the public ones are there: the scan is not blind.
    const catalogue = (await (await fetch(`${t.broker.url}/developer/catalogue.json`)).json()) as Catalogue;
    const publicNames = catalogue.services.flatMap((s) => s.methods.map((m) => m.name));
    expect(publicNames).toEqual(expect.arrayContaining(["RedeemLease", "CreateLease", "GetJwks", "WhoAmI"]));
    expect(catalogue.services.map((s) => s.name)).not.toContain("TenantService");
  });

  it("answers every page and asset with a strict CSP, no inline script or style, and an ETag", async () => {
    expect(portalCsp).toMatch(/^default-src 'self';/);
    expect(portalCsp).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
    for (const p of Object.keys(manifest)) {
      const response = await fetch(`${t.broker.url}${p}`);
      expect(response.headers.get("content-security-policy"), p).toBe(portalCsp);
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
      const etag = response.headers.get("etag") ?? "";
      expect(etag).toMatch(/^".+"$/);
      const body = await response.text();
      if (response.headers.get("content-type")?.startsWith("text/html")) {
        expect(body, p).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
        expect(body, p).not.toMatch(/\sstyle=|\son[a-z]+=/);
        // Nothing loaded from elsewhere: no CDN.
        expect(body, p).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);
      }
      const again = await fetch(`${t.broker.url}${p}`, { headers: { "if-none-match": etag } });
      expect(again.status, p).toBe(304);
    }
    const missing = await fetch(`${t.broker.url}/developer/api/aegis.tenant.v1.TenantService/CreateTenant`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-security-policy")).toBe(portalCsp);
  });

  it("serves an OpenAPI 3.1 document of the Connect JSON endpoints that redocly lint accepts", async () => {
    const doc = (await (await fetch(`${t.broker.url}/developer/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, { post?: unknown; get?: unknown }>;
    };
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.paths["/aegis.lease.v1.LeaseService/RedeemLease"]?.post).toBeDefined();
    expect(doc.paths["/aegis.lease.v1.LeaseService/RedeemLease"]?.get).toBeUndefined();
    expect(doc.paths["/aegis.token.v1.TokenService/GetJwks"]?.get).toBeDefined();
    const file = path.join(mkdtempSync(path.join(tmpdir(), "aegis-openapi-")), "openapi.json");
    writeFileSync(file, JSON.stringify(doc));
    const { stdout, stderr } = await promisify(execFile)(path.resolve("node_modules/.bin/redocly"), ["lint", file], {
      env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" },
    });
    expect(`${stdout}${stderr}`).toContain("Your API description is valid");
    expect(`${stdout}${stderr}`).not.toMatch(/You have \d+ warnings?/);
  }, 120_000);

  it("answers a GET of a side-effect-free operation as the OpenAPI document says", async () => {
    const url = new URL(`${t.broker.url}/aegis.token.v1.TokenService/GetJwks`);
    url.search = new URLSearchParams({ encoding: "json", message: "{}", connect: "v1" }).toString();
    const response = await fetch(url);
    expect(response.status).toBe(200);
    const jwks = (await response.json()) as { keys?: { kid?: string }[] };
    expect(jwks.keys?.length).toBeGreaterThan(0);
  });
});
