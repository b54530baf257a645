// A resource server already running the SDK against the broker's live JWKS
// (`jwksUri`): how long a key retired by RetireSigningKey is still accepted.
// The bound is the JWKS response's Cache-Control max-age (60 s); the test
// moves the verifier's clock (`now`) instead of waiting.
import { decodeProtectedHeader } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentService } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { ApiKeyService } from "../../gen/proto/aegis/apikey/v1/apikey_pb.js";
import { TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import { verifyAccessToken } from "../../src/sdk/index.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { createActor, registerApi } from "../support/fixtures.js";

describe.each(databaseKinds)("SDK verification with jwksUri on %s", (kind) => {
  let t: TestBroker;
  let agentId: string;
  let agentKey: string;
  const jwksUri = () => `${t.broker.url}/.well-known/jwks.json`;
  const mint = async () =>
    (
      await t
        .client(TokenService, { key: agentKey })
        .mintToken({ audience: "https://api.example.com", scopes: ["reports.read"] })
    ).accessToken;
  const verifyAt = (token: string, now: Date) =>
    verifyAccessToken(token, { issuer: t.broker.url, audience: "https://api.example.com", jwksUri: jwksUri(), now });

  beforeAll(async () => {
    t = await startTestBroker(kind);
    const person = await createActor(t, {
      scopes: ["agent.register", "apikey.create", "resource_server.create", "grant.create"],
    });
    const agents = t.client(AgentService, { key: person.key });
    const { agent } = await agents.registerAgent({ displayName: "Report bot" });
    agentId = agent?.id ?? "";
    agentKey = (await t.client(ApiKeyService, { key: person.key }).createApiKey({ principalId: agentId, label: "ci" }))
      .secret;
    await registerApi(t, person.key, {
      identifier: "https://api.example.com",
      scopes: ["reports.read"],
      grants: { [agentId]: ["reports.read"] },
    });
  });
  afterAll(() => t.stop());

  it("serves the JWKS with the max-age the SDK's bound is stated in", async () => {
    const response = await fetch(jwksUri());
    expect(response.headers.get("cache-control")).toBe("public, max-age=60");
  });

  it("stops accepting a retired key's tokens within the JWKS max-age (60 s)", async () => {
    const token = await mint(); // lives 300 s: every time below is within it
    const t0 = Date.now();
    const at = (seconds: number) => new Date(t0 + seconds * 1000);
    await verifyAt(token, at(0)); // the verifier's cache is warm

    const { kid } = decodeProtectedHeader(token);
    await t.client(TokenService).retireSigningKey({ kid: kid ?? "" });
    const jwks = (await (await fetch(jwksUri())).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.map((k) => k.kid)).not.toContain(kid);

    // Within max-age the cached set is used as it was: the documented window.
    expect((await verifyAt(token, at(30))).sub).toBe(agentId);
    // Past it the set is fetched again before verifying, and the key is gone.
    await expect(verifyAt(token, at(61))).rejects.toMatchObject({ name: "AegisTokenError", code: "invalid_token" });
    await expect(verifyAt(token, at(62))).rejects.toMatchObject({ code: "invalid_token" });

    const replacement = await mint(); // signed by the key that took over
    expect(decodeProtectedHeader(replacement).kid).not.toBe(kid);
    expect((await verifyAt(replacement, at(62))).sub).toBe(agentId);
  });
});
