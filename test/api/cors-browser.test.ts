// Browsers on other origins, in a real browser (headless Chromium from
// Debian, driven by playwright-core): a page served from another origin
// calls the broker with connect-web (bundled here with esbuild) over
// Connect, Connect GET and gRPC-Web when AEGIS_CORS_ALLOWED_ORIGINS lists
// its origin; a page of an origin not listed is refused by the browser and
// the broker runs nothing it sent.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { Code } from "@connectrpc/connect";
import { build } from "esbuild";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { launchChromium } from "../support/chromium.js";
import type { PageApi, PageProtocol } from "../support/cors-page/page.js";
import { type Actor, createActor } from "../support/fixtures.js";

/** Serves the page and its bundle, from an origin of its own. */
async function servePage(bundle: string): Promise<{ server: Server; origin: string }> {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Integrator page</title>
<script type="module" src="/page.js"></script></head><body><main>An integrator's page</main></body></html>`;
  const server = createServer((req, res) => {
    if (req.url === "/page.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      res.end(bundle);
    } else {
      res.writeHead(200, { "content-type": "text/html" });
      res.end(html);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

type Call = { [K in keyof PageApi]: (...args: Parameters<PageApi[K]>) => ReturnType<PageApi[K]> };

/** Runs one of the page's functions in the page. */
function inPage(page: Page): Call {
  const call =
    (name: keyof PageApi) =>
    (...args: unknown[]) =>
      page.evaluate(
        ([fn, rest]) =>
          (globalThis as unknown as { aegis: Record<string, (...a: unknown[]) => unknown> }).aegis[fn as string]?.(
            ...(rest as unknown[]),
          ),
        [name, args] as const,
      );
  return {
    getJwks: call("getJwks"),
    whoAmI: call("whoAmI"),
    registerAgent: call("registerAgent"),
    mintByForm: call("mintByForm"),
  } as never;
}

describe("a page on another origin, in a real browser", () => {
  let t: TestBroker;
  let browser: Browser;
  let listed: { server: Server; origin: string };
  let other: { server: Server; origin: string };
  let admin: Actor;

  beforeAll(async () => {
    const bundled = await build({
      entryPoints: [path.resolve("test/support/cors-page/page.ts")],
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      write: false,
      logLevel: "silent",
    });
    const bundle = bundled.outputFiles[0]?.text ?? "";
    listed = await servePage(bundle);
    other = await servePage(bundle);
    t = await startTestBroker("pglite", { AEGIS_CORS_ALLOWED_ORIGINS: listed.origin });
    admin = await createActor(t, { scopes: ["agent.register"], name: "Page user" });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.stop();
    listed?.server.close();
    other?.server.close();
  });

  async function open(origin: string): Promise<{ page: Page; call: Call; close: () => Promise<void> }> {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => "aegis" in globalThis);
    return { page, call: inPage(page), close: () => context.close() };
  }

  it.each<PageProtocol>(["connect", "connect-get", "grpc-web"])(
    "calls GetJwks anonymously and WhoAmI with an API key over %s from a listed origin",
    async (protocol) => {
      const { call, close } = await open(listed.origin);
      const jwks = await call.getJwks(t.broker.url, protocol);
      expect(jwks.error).toBeUndefined();
      expect(jwks.ok?.length).toBeGreaterThan(0);
      // Exposed headers are readable by the page.
      expect(jwks.headers["aegis-request-id"]).toMatch(/^req_/);
      if (protocol === "connect-get") expect(jwks.headers.etag).toMatch(/^"/);

      const whoami = await call.whoAmI(t.broker.url, protocol, admin.key);
      expect(whoami).toMatchObject({ ok: admin.principalId });

      // A refusal is readable too: its code and the credential challenge.
      const anonymous = await call.whoAmI(t.broker.url, protocol, undefined);
      expect(anonymous.error?.code).toBe(Code.Unauthenticated);
      expect(anonymous.error?.challenge).toMatch(/^Bearer /);
      await close();
    },
  );

  it("creates an agent from a listed origin", async () => {
    const { call, close } = await open(listed.origin);
    const created = await call.registerAgent(t.broker.url, "connect", admin.key, "Agent from the page");
    expect(created.ok).toMatch(/^prn_/);
    await close();
  });

  it("is refused by the browser on an origin not listed, and the broker runs nothing it sent", async () => {
    const prisma = t.db.database.prisma;
    const principals = await prisma.principal.count();
    const events = await prisma.auditEvent.count();
    const from = t.logs.length;
    const { call, close } = await open(other.origin);
    for (const protocol of ["connect", "connect-get", "grpc-web"] as const) {
      const jwks = await call.getJwks(t.broker.url, protocol);
      expect(jwks.ok, protocol).toBeUndefined();
      expect(jwks.error?.message, protocol).toMatch(/fetch/i);
      const created = await call.registerAgent(t.broker.url, protocol, admin.key, "Planted agent");
      expect(created.ok, protocol).toBeUndefined();
      expect(created.error?.message, protocol).toMatch(/fetch/i);
    }
    // Sent without a preflight, so it reaches the broker: refused there, before anything runs.
    expect(await call.mintByForm(t.broker.url, admin.key)).toBe("sent");
    await close();

    expect(await prisma.principal.count()).toBe(principals);
    expect(await prisma.principal.count({ where: { displayName: "Planted agent" } })).toBe(0);
    expect(await prisma.auditEvent.count()).toBe(events);
    const lines = t.logs.slice(from).map((line) => JSON.parse(line) as { msg: string; origin?: string; path?: string });
    const refused = lines.filter((l) => l.msg === "cors refused");
    expect(refused.every((l) => l.origin === other.origin)).toBe(true);
    expect(refused.map((l) => l.path)).toContain("/oauth/token");
    expect(refused.map((l) => l.path)).toContain("/aegis.agent.v1.AgentService/RegisterAgent");
    expect(lines.filter((l) => l.msg === "rpc" || l.msg === "http")).toEqual([]);
  });
});
