// The walkthroughs of the systems this broker replaces, as acceptance
// tests through the public API only: KeyVault (a token for `payments` with
// `repo.read`), AIMS (a capability catalogue granted and revoked), and
// Kor'tana (a client-credentials token for `model:invoke sync:write`
// verified by a resource server with the SDK, then signing-key rotation).
import { Code } from "@connectrpc/connect";
import * as client from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentService } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { ApiKeyService } from "../../gen/proto/aegis/apikey/v1/apikey_pb.js";
import { GrantService } from "../../gen/proto/aegis/grant/v1/grant_pb.js";
import { ResourceServerService } from "../../gen/proto/aegis/resourceserver/v1/resource_server_pb.js";
import { TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import { AegisTokenError, verifyAccessToken } from "../../src/sdk/index.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { failure, reasonOf } from "../support/errors.js";
import { type Actor, createActor, seconds } from "../support/fixtures.js";

describe.each(databaseKinds)("walkthroughs on %s", (kind) => {
  let t: TestBroker;
  let admin: Actor;
  const servers = () => t.client(ResourceServerService, { key: admin.key });
  const grants = (key = admin.key) => t.client(GrantService, { key });

  beforeAll(async () => {
    t = await startTestBroker(kind);
    admin = await createActor(t, {
      scopes: [
        "resource_server.create",
        "resource_server.read",
        "grant.create",
        "grant.delete",
        "grant.list",
        "agent.register",
        "agent.suspend",
        "apikey.create",
        "apikey.revoke",
      ],
    });
  });
  afterAll(() => t.stop());

  /** An agent of the admin's tenant with an API key. */
  async function agentWithKey(name: string, scopes: string[] = []) {
    const { agent } = await t.client(AgentService, { key: admin.key }).registerAgent({ displayName: name, scopes });
    const key = await t.client(ApiKeyService, { key: admin.key }).createApiKey({ principalId: agent?.id ?? "" });
    return { id: agent?.id ?? "", key: key.secret, keyId: key.key?.id ?? "" };
  }

  it("KeyVault: a 300 s token for payments with repo.read, introspected by payments, revoked by jti", async () => {
    const { resourceServer: payments } = await servers().createResourceServer({
      identifier: "payments",
      displayName: "Payments",
      scopes: [{ name: "repo.read", description: "read the repositories" }],
    });
    const id = payments?.id ?? "";
    const caller = await agentWithKey("keyvault caller");
    await grants().createGrant({ principalId: caller.id, scope: "repo.read", resourceServerId: id });
    const minted = await t
      .client(TokenService, { key: caller.key })
      .mintToken({ audience: "payments", scopes: ["repo.read"], lifetime: seconds(300) });
    expect(minted).toMatchObject({ expiresIn: 300, scope: "repo.read", tokenType: "Bearer" });

    const rsKey = await t
      .client(ApiKeyService, { key: admin.key })
      .createApiKey({ principalId: payments?.principalId ?? "", label: "payments introspection" });
    const asPayments = t.client(TokenService, { key: rsKey.secret });
    expect(await asPayments.introspectToken({ token: minted.accessToken })).toMatchObject({
      active: true,
      aud: "payments",
      scope: "repo.read",
      sub: caller.id,
    });
    await t.client(TokenService, { key: caller.key }).revokeToken({ jti: minted.jti });
    expect((await asPayments.introspectToken({ token: minted.accessToken })).active).toBe(false);

    await t.client(ApiKeyService, { key: admin.key }).revokeApiKey({ keyId: caller.keyId });
    const afterRevoke = await failure(
      t.client(TokenService, { key: caller.key }).mintToken({ audience: "payments", scopes: ["repo.read"] }),
    );
    expect(afterRevoke?.code).toBe(Code.Unauthenticated);
  });

  it("AIMS: a capability catalogue created, listed, granted to an agent and revoked; no self-elevation", async () => {
    const { resourceServer: aims } = await servers().createResourceServer({
      identifier: "https://aims.example.com",
      displayName: "AIMS capabilities",
    });
    const id = aims?.id ?? "";
    for (const name of ["inventory.read", "inventory.write"]) {
      await servers().updateResourceServer({
        resourceServerId: id,
        addScopes: [{ name, description: `${name} capability` }],
      });
    }
    const listed = await servers().getResourceServer({ resourceServerId: id });
    expect(listed.resourceServer?.scopes.map((s) => s.name)).toEqual(["inventory.read", "inventory.write"]);

    // The agent may give grants, but holds no right over this server and cannot raise itself.
    const agent = await agentWithKey("aims agent", ["grant.create"]);
    const { grant } = await grants().createGrant({
      principalId: agent.id,
      scope: "inventory.read",
      resourceServerId: id,
    });
    const self = await failure(
      grants(agent.key).createGrant({ principalId: agent.id, scope: "inventory.write", resourceServerId: id }),
    );
    expect(reasonOf(self)).toBe("SELF_GRANT");
    const rightToSelf = await failure(
      grants(agent.key).createGrant({ principalId: agent.id, scope: `resource_server.admin:server:${id}` }),
    );
    expect(reasonOf(rightToSelf)).toBe("SELF_GRANT");
    const wider = await failure(
      t
        .client(TokenService, { key: agent.key })
        .mintToken({ audience: "https://aims.example.com", scopes: ["inventory.write"] }),
    );
    expect(reasonOf(wider)).toBe("SCOPE_NOT_GRANTED");
    const ok = await t
      .client(TokenService, { key: agent.key })
      .mintToken({ audience: "https://aims.example.com", scopes: ["inventory.read"] });
    expect(ok.scope).toBe("inventory.read");

    t.clock.advance(1000);
    await grants().deleteGrant({ grantId: grant?.id ?? "" });
    t.clock.advance(1000);
    const revoked = await failure(
      t
        .client(TokenService, { key: agent.key })
        .mintToken({ audience: "https://aims.example.com", scopes: ["inventory.read"] }),
    );
    expect(reasonOf(revoked)).toBe("SCOPE_NOT_GRANTED");

    // Suspension is refused at token exchange.
    await grants().createGrant({ principalId: agent.id, scope: "inventory.read", resourceServerId: id });
    await t.client(AgentService, { key: admin.key }).suspendAgent({ agentId: agent.id });
    const suspended = await failure(
      t
        .client(TokenService, { key: agent.key })
        .mintToken({ audience: "https://aims.example.com", scopes: ["inventory.read"] }),
    );
    expect(suspended?.code).toBe(Code.Unauthenticated);
  });

  it("Kor'tana: client credentials for model:invoke sync:write, verified with the SDK; revoked; keys rotated", async () => {
    const { resourceServer: kortana } = await servers().createResourceServer({
      identifier: "https://kortana.example.com",
      displayName: "Kor'tana",
      scopes: [{ name: "model:invoke" }, { name: "sync:write" }],
    });
    const agent = await agentWithKey("kortana worker");
    for (const scope of ["model:invoke", "sync:write"]) {
      await grants().createGrant({ principalId: agent.id, scope, resourceServerId: kortana?.id ?? "" });
    }
    const config = await client.discovery(
      new URL(t.broker.url),
      agent.id,
      undefined,
      client.ClientSecretPost(agent.key),
      { execute: [client.allowInsecureRequests], algorithm: "oauth2" },
    );
    const grantFor = () =>
      client.clientCredentialsGrant(config, {
        scope: "model:invoke sync:write",
        resource: "https://kortana.example.com",
      });
    const tokens = await grantFor();
    expect(tokens.scope).toBe("model:invoke sync:write");
    const verify = (token: string) =>
      verifyAccessToken(token, {
        issuer: t.broker.url,
        audience: "https://kortana.example.com",
        jwksUri: `${t.broker.url}/.well-known/jwks.json`,
        now: t.clock.now(),
      });
    const claims = await verify(tokens.access_token);
    expect(claims).toMatchObject({
      sub: agent.id,
      scope: "model:invoke sync:write",
      aud: "https://kortana.example.com",
    });

    // Revoked: the broker says so at once (introspection), and the RS learns it there.
    await t.client(TokenService, { key: agent.key }).revokeToken({ token: tokens.access_token });
    const seen = await t.client(TokenService, { key: t.adminKey }).introspectToken({ token: tokens.access_token });
    expect(seen.active).toBe(false);

    // Soft rotation: old tokens keep verifying, new ones are signed by the new key.
    const before = await grantFor();
    await t.client(TokenService, { key: t.adminKey }).rotateSigningKeys({});
    const after = await grantFor();
    const kid = (token: string) => JSON.parse(Buffer.from(token.split(".")[0] ?? "", "base64url").toString()).kid;
    expect(kid(after.access_token)).not.toBe(kid(before.access_token));
    t.clock.advance(61_000); // past the SDK's JWKS max-age
    await expect(verify(before.access_token)).resolves.toMatchObject({ sub: agent.id });
    await expect(verify(after.access_token)).resolves.toMatchObject({ sub: agent.id });

    // Hard rotation: the retired key's tokens stop verifying once the JWKS is fetched again.
    await t.client(TokenService, { key: t.adminKey }).retireSigningKey({ kid: kid(before.access_token) });
    t.clock.advance(61_000);
    await expect(verify(before.access_token)).rejects.toBeInstanceOf(AegisTokenError);
    await expect(verify(after.access_token)).resolves.toMatchObject({ sub: agent.id });
  });
});
