// CORS over real HTTP (the browser's side is test/api/cors-browser.test.ts):
// preflights from a listed origin are answered with what Connect, gRPC-Web,
// DPoP and the broker need; a request from any other origin is refused
// before anything runs, which the audit trail and the database confirm.
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/core/config.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { type Actor, createActor } from "../support/fixtures.js";

const app = "http://app.example.test:3000";
const evil = "https://evil.example.test";

/** A raw HTTP/1.1 exchange: `fetch` would not send an `Origin` of our choosing. */
function send(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? "GET", headers: options.headers }, (res) => {
      let body = "";
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

const list = (value: string | string[] | undefined) =>
  String(value ?? "")
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);

describe("AEGIS_CORS_ALLOWED_ORIGINS", () => {
  it("takes exact origins and refuses anything else, naming the variable", () => {
    const read = (value: string) => loadConfig({ AEGIS_CORS_ALLOWED_ORIGINS: value }).corsAllowedOrigins;
    expect(loadConfig({}).corsAllowedOrigins).toEqual([]);
    expect(read("https://app.example.com, http://localhost:5173")).toEqual([
      "https://app.example.com",
      "http://localhost:5173",
    ]);
    for (const [value, problem] of [
      ["*", "* is not allowed"],
      ["null", "is not an http(s) origin"],
      ["app.example.com", "is not an http(s) origin"],
      ["ftp://app.example.com", "is not an http(s) origin"],
      ["https://app.example.com/", "write https://app.example.com"],
      ["https://app.example.com/portal", "write https://app.example.com"],
      ["https://App.Example.com", "write https://app.example.com"],
      ["https://app.example.com:443", "write https://app.example.com"],
      ["https://user@app.example.com", "write https://app.example.com"],
      ["https://app.example.com,", "is not an http(s) origin"],
    ]) {
      expect(() => read(value as string), value).toThrow(/^AEGIS_CORS_ALLOWED_ORIGINS: /);
      expect(() => read(value as string), value).toThrow(problem);
    }
  });
});

describe.each(databaseKinds)("CORS on %s", (kind) => {
  let t: TestBroker;
  let admin: Actor;
  const rpc = (service: string, method: string) => `${t.broker.url}/aegis.${service}/${method}`;

  beforeAll(async () => {
    // A configured public URL (AEGIS_PUBLIC_URL) on every database: the rebinding guard checks Host against it.
    t = await startTestBroker(kind, { AEGIS_CORS_ALLOWED_ORIGINS: `${app}, http://other.example.test` }, undefined, {
      ownPublicUrl: true,
    });
    admin = await createActor(t, { scopes: ["agent.register", "audit.read"] });
  });
  afterAll(() => t.stop());

  const preflight = (path: string, origin: string, headers = "authorization, content-type, connect-protocol-version") =>
    send(`${t.broker.url}${path}`, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": headers },
    });

  it.each([
    "/aegis.agent.v1.AgentService/RegisterAgent",
    "/aegis.token.v1.TokenService/GetJwks",
    "/oauth/token",
    "/.well-known/jwks.json",
    "/.well-known/oauth-authorization-server",
  ])("answers a listed origin's preflight for %s", async (path) => {
    const res = await preflight(path, app);
    expect(res.status).toBe(204);
    expect(res.body).toBe("");
    expect(res.headers["access-control-allow-origin"]).toBe(app);
    expect(list(res.headers["access-control-allow-methods"])).toEqual(["post", "get"]);
    const allowed = list(res.headers["access-control-allow-headers"]);
    for (const header of [
      "content-type",
      "connect-protocol-version",
      "connect-timeout-ms",
      "x-grpc-web",
      "x-user-agent",
      "grpc-timeout",
      "authorization",
      "dpop",
      "x-request-id",
    ]) {
      expect(allowed).toContain(header);
    }
    expect(res.headers["access-control-max-age"]).toBe("7200");
    expect(list(res.headers.vary)).toContain("origin");
    // Never cookies across origins: the API's credentials travel in headers.
    expect(res.headers["access-control-allow-credentials"]).toBeUndefined();
  });

  it("answers a preflight asking for the private network only for a listed origin", async () => {
    const ask = { "access-control-request-private-network": "true" };
    const listed = await send(`${t.broker.url}/oauth/token`, {
      method: "OPTIONS",
      headers: { origin: app, "access-control-request-method": "POST", ...ask },
    });
    expect(listed.headers["access-control-allow-private-network"]).toBe("true");
    const other = await send(`${t.broker.url}/oauth/token`, {
      method: "OPTIONS",
      headers: { origin: evil, "access-control-request-method": "POST", ...ask },
    });
    expect(other.status).toBe(403);
    expect(other.headers["access-control-allow-private-network"]).toBeUndefined();
  });

  it("lets a listed origin read an RPC's answer and the headers Connect, gRPC-Web and DPoP use", async () => {
    const res = await send(rpc("principal.v1.PrincipalService", "WhoAmI"), {
      method: "POST",
      headers: { origin: app, "content-type": "application/json", authorization: `Bearer ${admin.key}` },
      body: "{}",
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).principal.id).toBe(admin.principalId);
    expect(res.headers["access-control-allow-origin"]).toBe(app);
    const exposed = list(res.headers["access-control-expose-headers"]);
    for (const header of [
      "grpc-status",
      "grpc-message",
      "grpc-status-details-bin",
      "connect-content-encoding",
      "connect-accept-encoding",
      "aegis-request-id",
      "dpop-nonce",
      "www-authenticate",
      "etag",
    ]) {
      expect(exposed).toContain(header);
    }
    expect(list(res.headers.vary)).toContain("origin");
  });

  it("lets a listed origin read an OAuth endpoint's refusal and its challenge", async () => {
    const res = await send(`${t.broker.url}/oauth/token`, {
      method: "POST",
      headers: { origin: app, "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=client_credentials",
    });
    expect(res.status).toBe(401);
    expect(res.headers["access-control-allow-origin"]).toBe(app);
    expect(list(res.headers["access-control-expose-headers"])).toContain("www-authenticate");
  });

  it("refuses a preflight from an origin not listed, with no allow headers", async () => {
    for (const origin of [
      evil,
      "null",
      `${app}.evil.test`,
      "http://app.example.test:3001",
      "https://app.example.test:3000",
    ]) {
      const res = await preflight("/aegis.agent.v1.AgentService/RegisterAgent", origin);
      expect(res.status, origin).toBe(403);
      expect(res.headers["access-control-allow-origin"], origin).toBeUndefined();
      expect(res.headers["access-control-allow-methods"], origin).toBeUndefined();
      expect(res.headers["access-control-allow-headers"], origin).toBeUndefined();
    }
  });

  it("executes nothing a page of an origin not listed sends: no agent, no token, no audit event", async () => {
    const agentsBefore = await t.db.database.prisma.principal.count({ where: { tenantId: admin.tenantId } });
    const eventsBefore = await t.db.database.prisma.auditEvent.count();
    const logsBefore = t.logs.length;
    const create = await send(rpc("agent.v1.AgentService", "RegisterAgent"), {
      method: "POST",
      headers: { origin: evil, "content-type": "application/json", authorization: `Bearer ${admin.key}` },
      body: JSON.stringify({ displayName: "planted agent" }),
    });
    expect(create.status).toBe(403);
    expect(create.headers["access-control-allow-origin"]).toBeUndefined();
    // A "simple" request a browser sends without a preflight: a form POST, with the key as client secret.
    const mint = await send(`${t.broker.url}/oauth/token`, {
      method: "POST",
      headers: { origin: evil, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", client_secret: admin.key }).toString(),
    });
    expect(mint.status).toBe(403);
    // And a Connect GET, which needs no preflight either.
    const get = await send(`${rpc("token.v1.TokenService", "GetJwks")}?connect=v1&encoding=json&message=%7B%7D`, {
      headers: { origin: evil },
    });
    expect(get.status).toBe(403);

    expect(await t.db.database.prisma.principal.count({ where: { tenantId: admin.tenantId } })).toBe(agentsBefore);
    expect(await t.db.database.prisma.auditEvent.count()).toBe(eventsBefore);
    const lines = t.logs.slice(logsBefore).map((line) => JSON.parse(line) as { msg: string; origin?: string });
    expect(lines.filter((l) => l.msg === "cors refused").map((l) => l.origin)).toEqual([evil, evil, evil]);
    expect(lines.filter((l) => l.msg === "rpc" || l.msg === "http")).toEqual([]);

    // The same call without an Origin (curl, a server, a generated client) runs as always.
    const direct = await send(rpc("agent.v1.AgentService", "RegisterAgent"), {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${admin.key}` },
      body: JSON.stringify({ displayName: "real agent" }),
    });
    expect(direct.status).toBe(200);
    expect(direct.headers["access-control-allow-origin"]).toBeUndefined();
    expect(await t.db.database.prisma.principal.count({ where: { tenantId: admin.tenantId } })).toBe(agentsBefore + 1);
  });

  it("treats the broker's own origin (its pages) as same-origin", async () => {
    const res = await send(rpc("principal.v1.PrincipalService", "WhoAmI"), {
      method: "POST",
      headers: {
        origin: new URL(t.broker.url).origin,
        "content-type": "application/json",
        authorization: `Bearer ${admin.key}`,
      },
      body: "{}",
    });
    expect(res.status).toBe(200);
    expect(res.headers["access-control-allow-origin"]).toBeUndefined();
  });

  it("lets the broker's own no-referrer pages post (Origin: null, Sec-Fetch-Site: same-origin), nobody else", async () => {
    const post = (site: string) =>
      send(rpc("principal.v1.PrincipalService", "WhoAmI"), {
        method: "POST",
        headers: {
          origin: "null",
          "sec-fetch-site": site,
          "content-type": "application/json",
          authorization: `Bearer ${admin.key}`,
        },
        body: "{}",
      });
    expect((await post("same-origin")).status).toBe(200);
    expect((await post("cross-site")).status).toBe(403);
    expect((await post("same-site")).status).toBe(403);
  });

  it("refuses a DNS-rebinding page (its own name in Host and Origin, same-origin to the browser): nothing runs", async () => {
    const port = new URL(t.broker.url).port;
    const rebound = `evil.example:${port}`;
    const agentsBefore = await t.db.database.prisma.principal.count({ where: { tenantId: admin.tenantId } });
    const eventsBefore = await t.db.database.prisma.auditEvent.count();
    const logsBefore = t.logs.length;
    const register = (headers: Record<string, string>) =>
      send(rpc("agent.v1.AgentService", "RegisterAgent"), {
        method: "POST",
        headers: {
          ...headers,
          "content-type": "application/json",
          authorization: `Bearer ${admin.key}`,
        },
        body: JSON.stringify({ displayName: "rebound agent" }),
      });
    const withOrigin = await register({ host: rebound, origin: `http://${rebound}`, "sec-fetch-site": "same-origin" });
    expect(withOrigin.status).toBe(403);
    expect(JSON.parse(withOrigin.body)).toEqual({ error: "host_not_allowed" });
    // The page hides its origin behind a no-referrer policy: the name it was reached by still shows.
    const hidden = await register({ host: rebound, origin: "null", "sec-fetch-site": "same-origin" });
    expect(hidden.status).toBe(403);
    // The broker's own name with a foreign origin claiming same-origin is no page of the broker's either.
    const foreign = await register({
      host: new URL(t.broker.url).host,
      origin: `http://${rebound}`,
      "sec-fetch-site": "same-origin",
    });
    expect(foreign.status).toBe(403);
    expect(JSON.parse(foreign.body)).toEqual({ error: "origin_not_allowed" });

    expect(await t.db.database.prisma.principal.count({ where: { tenantId: admin.tenantId } })).toBe(agentsBefore);
    expect(await t.db.database.prisma.auditEvent.count()).toBe(eventsBefore);
    const lines = t.logs
      .slice(logsBefore)
      .map((line) => JSON.parse(line) as { msg: string; host?: string; error?: string });
    expect(lines.filter((l) => l.msg === "cors refused").map((l) => l.error)).toEqual([
      "host_not_allowed",
      "host_not_allowed",
      "origin_not_allowed",
    ]);
    expect(lines.filter((l) => l.msg === "rpc" || l.msg === "http")).toEqual([]);

    // The broker's own no-referrer page, under the public URL's name, still runs.
    const own = await register({ host: new URL(t.broker.url).host, origin: "null", "sec-fetch-site": "same-origin" });
    expect(own.status).toBe(200);
  });
});

describe("CORS by default", () => {
  let t: TestBroker;
  beforeAll(async () => {
    t = await startTestBroker("pglite");
  });
  afterAll(() => t.stop());

  it("allows no other origin at all", async () => {
    const res = await send(`${t.broker.url}/aegis.token.v1.TokenService/GetJwks`, {
      method: "OPTIONS",
      headers: { origin: app, "access-control-request-method": "POST" },
    });
    expect(res.status).toBe(403);
    expect(res.headers["access-control-allow-origin"]).toBeUndefined();
    // Nothing listed, nothing to tell apart: no Vary on answers without an Origin.
    const plain = await send(`${t.broker.url}/.well-known/jwks.json`);
    expect(plain.status).toBe(200);
    expect(plain.headers.vary).toBeUndefined();
  });
});
