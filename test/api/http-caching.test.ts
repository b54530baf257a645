// Connect GET of side-effect-free RPCs and the caching headers of every RPC
// answer, over real HTTP: the JWKS is public with a strong ETag and 304 on
// revalidation; everything else, success or error, is no-store.
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import { services } from "../../src/app/modules.js";
import { policyOf, Visibility } from "../../src/policy/method-policy.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { type Actor, createActor } from "../support/fixtures.js";

describe.each(databaseKinds)("HTTP caching on %s", (kind) => {
  let t: TestBroker;
  let reader: Actor;
  const get = (path: string, message: object, headers: Record<string, string> = {}, encoding = "json") => {
    // An empty binary message is no bytes at all.
    const text = encoding === "json" ? JSON.stringify(message) : "";
    return fetch(`${t.broker.url}${path}?connect=v1&encoding=${encoding}&message=${encodeURIComponent(text)}`, {
      headers,
    });
  };
  const jwks = "/aegis.token.v1.TokenService/GetJwks";

  beforeAll(async () => {
    t = await startTestBroker(kind);
    reader = await createActor(t, { scopes: ["agent.list"] });
  });
  afterAll(() => t.stop());

  it("declares every side-effect-free public read NO_SIDE_EFFECTS, so it answers GET", () => {
    const reads = services
      .flatMap((s) => s.methods)
      .filter(
        (m) => policyOf(m)?.visibility === Visibility.PUBLIC && /^(Get|List|WhoAmI|Query|Introspect)/.test(m.name),
      );
    expect(reads.length).toBeGreaterThan(20);
    expect(reads.filter((m) => m.idempotency !== 1 && m.methodKind === "unary").map((m) => m.name)).toEqual([]);
  });

  it("answers GetJwks over Connect GET, cacheable by anyone for 60 s, with a strong ETag", async () => {
    const res = await get(jwks, {});
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("public, max-age=60");
    const etag = res.headers.get("etag") ?? "";
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/);
    const body = (await res.json()) as { keys: { kid: string }[] };
    expect(body.keys.length).toBeGreaterThan(0);

    const again = await get(jwks, {});
    expect(again.headers.get("etag")).toBe(etag);
    // Another representation (binary protobuf) is other bytes: another tag.
    const binary = await get(jwks, {}, {}, "proto");
    expect(binary.status).toBe(200);
    expect(binary.headers.get("etag")).toMatch(/^"[A-Za-z0-9_-]{27}"$/);
    expect(binary.headers.get("etag")).not.toBe(etag);
  });

  it("answers a revalidation naming the current ETag with 304 and no body", async () => {
    const etag = (await get(jwks, {})).headers.get("etag") ?? "";
    for (const ifNoneMatch of [etag, `"other", ${etag}`, `W/${etag}`, "*"]) {
      const res = await get(jwks, {}, { "if-none-match": ifNoneMatch });
      expect(res.status, ifNoneMatch).toBe(304);
      expect(await res.text()).toBe("");
      expect(res.headers.get("etag")).toBe(etag);
      expect(res.headers.get("cache-control")).toBe("public, max-age=60");
    }
    const stale = await get(jwks, {}, { "if-none-match": '"not-the-current-one"' });
    expect(stale.status).toBe(200);
  });

  it("changes the ETag when the key set changes", async () => {
    const before = (await get(jwks, {})).headers.get("etag");
    await t.client(TokenService).rotateSigningKeys({});
    const after = await get(jwks, {}, { "if-none-match": before ?? "" });
    expect(after.status).toBe(200);
    expect(after.headers.get("etag")).not.toBe(before);
  });

  it("marks GetJwks cacheable over POST too, and a connect-web client using GET reads it", async () => {
    const client = createClient(
      TokenService,
      createConnectTransport({ baseUrl: t.broker.url, httpVersion: "1.1", useHttpGet: true }),
    );
    let header: Headers | undefined;
    const res = await client.getJwks({}, { onHeader: (h) => (header = h) });
    expect(res.keys.length).toBeGreaterThan(0);
    expect(header?.get("etag")).toMatch(/^"/);
    const post = await fetch(`${t.broker.url}${jwks}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(post.headers.get("cache-control")).toBe("public, max-age=60");
  });

  it("answers a credentialed read over GET with no-store and no validator", async () => {
    const res = await get("/aegis.principal.v1.PrincipalService/WhoAmI", {}, { authorization: `Bearer ${reader.key}` });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { principal: { id: string } }).principal.id).toBe(reader.principalId);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("etag")).toBeNull();
    const list = await get(
      "/aegis.agent.v1.AgentService/ListAgents",
      { pageSize: 10 },
      {
        authorization: `Bearer ${reader.key}`,
      },
    );
    expect(list.status).toBe(200);
    expect(list.headers.get("cache-control")).toBe("no-store");
  });

  it("answers errors and POSTs with no-store", async () => {
    const refused = await get("/aegis.principal.v1.PrincipalService/WhoAmI", {});
    expect(refused.status).toBe(401);
    expect(refused.headers.get("cache-control")).toBe("no-store");
    const missing = await get(
      "/aegis.agent.v1.AgentService/GetAgent",
      { agentId: "prn_nope" },
      {
        authorization: `Bearer ${t.adminKey}`,
      },
    );
    expect([400, 404]).toContain(missing.status);
    expect(missing.headers.get("cache-control")).toBe("no-store");
    const post = await fetch(`${t.broker.url}/aegis.principal.v1.PrincipalService/WhoAmI`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${reader.key}` },
      body: "{}",
    });
    expect(post.status).toBe(200);
    expect(post.headers.get("cache-control")).toBe("no-store");
  });

  it("refuses GET for an RPC with side effects", async () => {
    const res = await get(
      "/aegis.agent.v1.AgentService/RegisterAgent",
      { displayName: "x" },
      {
        authorization: `Bearer ${t.adminKey}`,
      },
    );
    expect(res.status).toBe(405);
    expect(await t.db.database.prisma.principal.count({ where: { displayName: "x" } })).toBe(0);
  });
});
