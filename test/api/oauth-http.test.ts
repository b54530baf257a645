// The standard OAuth endpoints, driven by an independent client library
// (oauth4webapi) that knows nothing of Aegis but the discovery URL.
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import * as oauth from "oauth4webapi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentService } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { ApiKeyService } from "../../gen/proto/aegis/apikey/v1/apikey_pb.js";
import { TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import { verifyAccessToken } from "../../src/sdk/index.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { createDpopKey } from "../support/dpop.js";
import { failure } from "../support/errors.js";
import { type Actor, createActor, registerApi, seconds } from "../support/fixtures.js";

const insecure = { [oauth.allowInsecureRequests]: true } as const;

describe.each(databaseKinds)("OAuth HTTP endpoints on %s", (kind) => {
  let t: TestBroker;
  let agent: Actor;
  let rs: Actor;
  let admin: Actor;
  let as: oauth.AuthorizationServer;
  beforeAll(async () => {
    t = await startTestBroker(kind);
    agent = await createActor(t, { kind: "agent" });
    admin = await createActor(t, {
      tenantId: agent.tenantId,
      scopes: ["resource_server.create", "grant.create", "apikey.create"],
    });
    await registerApi(t, admin.key, {
      identifier: "https://api.example.com",
      scopes: ["reports.read", "reports.write"],
      grants: { [agent.principalId]: ["reports.read"] },
    });
    rs = await createActor(t, { tenantId: agent.tenantId, kind: "service", scopes: ["introspect.token"] });
    const issuer = new URL(t.broker.url);
    as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure }),
    );
  });
  afterAll(() => t.stop());

  it("publishes RFC 8414 metadata naming only endpoints that exist", async () => {
    expect(as).toMatchObject({
      issuer: t.broker.url,
      token_endpoint: `${t.broker.url}/oauth/token`,
      authorization_endpoint: `${t.broker.url}/oauth/authorize`,
      grant_types_supported: [
        "authorization_code",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:device_code",
        "refresh_token",
      ],
    });
    for (const endpoint of [
      as.authorization_endpoint,
      as.jwks_uri,
      as.introspection_endpoint,
      as.revocation_endpoint,
      as.device_authorization_endpoint,
    ]) {
      const res = await fetch(endpoint ?? "", {
        method: endpoint === as.jwks_uri || endpoint === as.authorization_endpoint ? "GET" : "POST",
      });
      expect(res.status).not.toBe(404);
    }
  });

  it("issues a DPoP-bound token by client_credentials, introspects and revokes it", async () => {
    const client: oauth.Client = { client_id: agent.principalId };
    const keyPair = await oauth.generateKeyPair("ES256");
    const DPoP = oauth.DPoP(client, keyPair);
    const response = await oauth.clientCredentialsGrantRequest(
      as,
      client,
      oauth.ClientSecretBasic(agent.key),
      { scope: "reports.read", audience: "https://api.example.com" },
      { DPoP, ...insecure },
    );
    const token = await oauth.processClientCredentialsResponse(as, client, response);
    expect(token.token_type).toBe("dpop");
    expect(token.scope).toBe("reports.read");
    const options = { issuer: t.broker.url, audience: "https://api.example.com", jwksUri: as.jwks_uri ?? "" };
    await expect(verifyAccessToken(token.access_token, options)).rejects.toMatchObject({ code: "invalid_token" }); // bound: proof needed

    const rsClient = { client_id: rs.principalId };
    const introspect = async () =>
      oauth.processIntrospectionResponse(
        as,
        rsClient,
        await oauth.introspectionRequest(as, rsClient, oauth.ClientSecretBasic(rs.key), token.access_token, insecure),
      );
    expect(await introspect()).toMatchObject({
      active: true,
      sub: agent.principalId,
      scope: "reports.read",
      token_type: "DPoP",
    });

    await oauth.processRevocationResponse(
      await oauth.revocationRequest(as, client, oauth.ClientSecretBasic(agent.key), token.access_token, insecure),
    );
    expect((await introspect()).active).toBe(false);
  });

  const post = (path: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
    fetch(`${t.broker.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
      body: new URLSearchParams(body),
    });
  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;

  it.each([
    [
      "a wrong client secret",
      { grant_type: "client_credentials" },
      // Another last character (the old `x` always was flaky: 1 in 62 keys end in x).
      () => basic(agent.principalId, `${agent.key.slice(0, -1)}${agent.key.endsWith("x") ? "y" : "x"}`),
      401,
      "invalid_client",
    ],
    [
      "a client_id that is not the key's owner",
      { grant_type: "client_credentials" },
      () => basic(rs.principalId, agent.key),
      401,
      "invalid_client",
    ],
    [
      "a scope not held",
      { grant_type: "client_credentials", scope: "reports.write" },
      () => basic(agent.principalId, agent.key),
      400,
      "invalid_scope",
    ],
    [
      "another grant type",
      { grant_type: "password" },
      () => basic(agent.principalId, agent.key),
      400,
      "unsupported_grant_type",
    ],
  ])("answers %s with the RFC error", async (_, form, auth, status, error) => {
    const res = await post("/oauth/token", form, { authorization: auth() });
    expect(res.status).toBe(status);
    expect(((await res.json()) as { error: string }).error).toBe(error);
    expect(res.headers.get("cache-control")).toBe("no-store");
  });

  it("shortens a client_credentials token to what is left of an expiring client secret, in expires_in", async () => {
    const { key, secret } = await t
      .client(ApiKeyService, { key: admin.key })
      .createApiKey({ principalId: agent.principalId, label: "one minute", ttl: seconds(60) });
    const keyExpiry = (await t.db.database.prisma.apiKey.findUniqueOrThrow({ where: { id: key?.id ?? "" } })).expiresAt;
    const client: oauth.Client = { client_id: agent.principalId };
    const response = await oauth.clientCredentialsGrantRequest(
      as,
      client,
      oauth.ClientSecretBasic(secret),
      { scope: "reports.read", audience: "https://api.example.com" },
      insecure,
    );
    const token = await oauth.processClientCredentialsResponse(as, client, response);
    const options = { issuer: t.broker.url, audience: "https://api.example.com", jwksUri: as.jwks_uri ?? "" };
    const { exp, iat } = await verifyAccessToken(token.access_token, options);
    expect(exp * 1000).toBeLessThanOrEqual(keyExpiry?.getTime() ?? 0);
    expect(token.expires_in).toBe(exp - iat);
    expect(token.expires_in).toBeLessThanOrEqual(60);
  });

  it("refuses a replayed DPoP proof at the token endpoint with invalid_dpop_proof", async () => {
    const dpop = await createDpopKey();
    const proof = await dpop.proof({ method: "POST", url: `${t.broker.url}/oauth/token` });
    const send = () =>
      post(
        "/oauth/token",
        { grant_type: "client_credentials" },
        { authorization: basic(agent.principalId, agent.key), dpop: proof },
      );
    expect((await send()).status).toBe(200);
    const replay = await send();
    expect(replay.status).toBe(400);
    expect(((await replay.json()) as { error: string }).error).toBe("invalid_dpop_proof");
  });

  it("refuses introspection without the grant", async () => {
    const res = await post("/oauth/introspect", { token: "x" }, { authorization: basic(agent.principalId, agent.key) });
    expect(res.status).toBe(403);
  });
});

describe("limits", () => {
  let t: TestBroker;
  beforeAll(async () => {
    t = await startTestBroker("pglite", {
      AEGIS_RATE_LIMIT_MINTS_PER_MINUTE: "3",
      AEGIS_RATE_LIMIT_REVOCATIONS_PER_MINUTE: "3",
      AEGIS_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: "5",
    });
  });
  afterAll(() => t.stop());

  it("rate-limits minting with resource_exhausted and a Retry-After", async () => {
    const agent = await createActor(t, { kind: "agent" });
    const mint = () => t.client(TokenService, { key: agent.key }).mintToken({ audience: t.broker.url, scopes: [] });
    for (let i = 0; i < 3; i++) await mint();
    const error = await failure(mint());
    expect(error?.code).toBe(Code.ResourceExhausted);
    expect(Number(error?.metadata.get("retry-after"))).toBeGreaterThan(0);
  });

  it("rate-limits revocations per caller, made-up jtis included, on RPC and RFC 7009 alike", async () => {
    const [agent, other] = [await createActor(t, { kind: "agent" }), await createActor(t, { kind: "agent" })];
    const revoke = (key: string) => t.client(TokenService, { key }).revokeToken({ jti: randomUUID() });
    for (let i = 0; i < 3; i++) await revoke(agent.key);
    const error = await failure(revoke(agent.key));
    expect(error?.code).toBe(Code.ResourceExhausted);
    expect(Number(error?.metadata.get("retry-after"))).toBeGreaterThan(0);
    const form = await fetch(`${t.broker.url}/oauth/revoke`, {
      method: "POST",
      headers: { authorization: `Bearer ${agent.key}`, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: "not-a-token" }),
    });
    expect(form.status).toBe(429);
    // Another caller has a budget of its own.
    await revoke(other.key);
  });

  it("stops checking credentials from an address after too many failures, even a right one", async () => {
    const person = await createActor(t, { scopes: ["agent.list"] });
    const wrong = `${person.key.slice(0, 20)}${"A".repeat(person.key.length - 20)}`;
    for (let i = 0; i < 5; i++) await failure(t.client(AgentService, { key: wrong }).listAgents({}));
    const error = await failure(t.client(AgentService, { key: person.key }).listAgents({}));
    expect(error?.code).toBe(Code.ResourceExhausted);
  });
});
