// Broker tokens end to end: mint by API key, assertion and DPoP; use them on
// the broker; verify them with the SDK against the live JWKS; and the attack
// list from the issue, each as its own test. Last, the rule that shortens a
// token to its credential's remaining life, as a unit table.
import { createHmac, randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentService, KeyUse } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { ApiKeyService } from "../../gen/proto/aegis/apikey/v1/apikey_pb.js";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import type { Caller } from "../../src/core/caller.js";
import { lifetimeWithin } from "../../src/policy/credential-issuance.js";
import { ScopeSet } from "../../src/protocol/scope.js";
import { AegisTokenError, requireScopes, verifyAccessToken } from "../../src/sdk/index.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { createDpopKey } from "../support/dpop.js";
import { failure, reasonOf } from "../support/errors.js";
import { type Actor, createActor, registerApi, seconds } from "../support/fixtures.js";

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

describe.each(databaseKinds)("broker tokens on %s", (kind) => {
  let t: TestBroker;
  let person: Actor;
  let agentId: string;
  let agentKey: string;
  const mintUrl = () => `${t.broker.url}/aegis.token.v1.TokenService/MintToken`;
  const whoAmIUrl = () => `${t.broker.url}/aegis.principal.v1.PrincipalService/WhoAmI`;
  const sdkOptions = () => ({
    issuer: t.broker.url,
    audience: "https://api.example.com",
    jwksUri: `${t.broker.url}/.well-known/jwks.json`,
  });

  beforeAll(async () => {
    t = await startTestBroker(kind);
    person = await createActor(t, {
      scopes: [
        "agent.register",
        "agent.suspend",
        "agent.reactivate",
        "agent.revoke",
        "agent.key.add",
        "apikey.create",
        "apikey.rotate",
        "resource_server.create",
        "grant.create",
      ],
    });
    const agents = t.client(AgentService, { key: person.key });
    const { agent } = await agents.registerAgent({ displayName: "Deploy bot" });
    agentId = agent?.id ?? "";
    agentKey = (await t.client(ApiKeyService, { key: person.key }).createApiKey({ principalId: agentId, label: "ci" }))
      .secret;
    await registerApi(t, person.key, {
      identifier: "https://api.example.com",
      scopes: ["reports.read", "reports.write"],
      grants: { [agentId]: ["reports.read"] },
    });
  });
  afterAll(() => t.stop());

  const tokens = (key?: string, headers?: Record<string, string>) =>
    t
      .client(TokenService, { key })
      .mintToken({ audience: "https://api.example.com", scopes: ["reports.read"] }, headers ? { headers } : {});

  it("mints an RFC 9068 token with an API key that the SDK verifies against the live JWKS", async () => {
    const minted = await tokens(agentKey);
    expect(minted).toMatchObject({ tokenType: "Bearer", expiresIn: 300, scope: "reports.read" });
    const [header] = minted.accessToken.split(".");
    expect(JSON.parse(Buffer.from(header ?? "", "base64url").toString())).toMatchObject({
      alg: "ES256",
      typ: "at+jwt",
    });
    const claims = await verifyAccessToken(minted.accessToken, sdkOptions());
    expect(claims).toMatchObject({
      iss: t.broker.url,
      sub: agentId,
      client_id: agentId,
      tenant_id: person.tenantId,
      jti: minted.jti,
    });
    requireScopes(claims, ["reports.read"]);
    expect(() => requireScopes(claims, ["reports.write"])).toThrow(/missing scopes: reports.write/);
    // With its tenant given, the SDK also refuses another tenant's token for the same identifier.
    await verifyAccessToken(minted.accessToken, { ...sdkOptions(), tenantId: person.tenantId });
    const other = await verifyAccessToken(minted.accessToken, { ...sdkOptions(), tenantId: "ten_another" }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(other).toBeInstanceOf(AegisTokenError);
    expect(other).toMatchObject({ code: "invalid_token", message: "access token is for another tenant" });
    expect(await t.db.database.prisma.auditEvent.count({ where: { action: "token.mint", target: minted.jti } })).toBe(
      1,
    );
  });

  it("refuses a scope the agent does not hold and audits what was asked", async () => {
    const error = await failure(
      t
        .client(TokenService, { key: agentKey })
        .mintToken({ audience: "https://api.example.com", scopes: ["reports.read", "reports.write"] }),
    );
    expect(error?.code).toBe(Code.PermissionDenied);
    expect(reasonOf(error)).toBe("SCOPE_NOT_GRANTED");
    const event = await t.db.database.prisma.auditEvent.findFirst({
      where: { action: "token.mint", outcome: "denied", actorId: agentId },
    });
    expect(event?.reason).toMatch(/not held reports.write/);
    // audited once, by mint itself, not again by the interceptor
    expect(await t.db.database.prisma.auditEvent.count({ where: { requestId: event?.requestId } })).toBe(1);
  });

  it("mints with a signed assertion from a registered key, once per assertion", async () => {
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    const { key } = await t
      .client(AgentService, { key: person.key })
      .addAgentKey({ agentId, use: KeyUse.SIGNING, jwkJson: JSON.stringify(await exportJWK(publicKey)) });
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid: key?.id ?? "" })
      .setIssuer(agentId)
      .setSubject(agentId)
      .setAudience(t.broker.url)
      .setIssuedAt()
      .setExpirationTime("2m")
      .setJti(randomUUID())
      .sign(privateKey);
    const client = t.client(TokenService, { key: undefined });
    const minted = await client.mintToken({
      audience: "https://api.example.com",
      scopes: ["reports.read"],
      clientAssertion: assertion,
    });
    expect((await verifyAccessToken(minted.accessToken, sdkOptions())).sub).toBe(agentId);
    const replay = await failure(client.mintToken({ audience: t.broker.url, scopes: [], clientAssertion: assertion }));
    expect(replay?.code).toBe(Code.Unauthenticated);
  });

  describe("client assertions refuse", () => {
    let kid = "";
    let revokedKid = "";
    let signer: CryptoKey;
    let stranger: CryptoKey;
    beforeAll(async () => {
      const agents = t.client(AgentService, { key: person.key });
      const own = await generateKeyPair("ES256");
      signer = own.privateKey;
      stranger = (await generateKeyPair("ES256")).privateKey;
      const jwkJson = JSON.stringify(await exportJWK(own.publicKey));
      kid = (await agents.addAgentKey({ agentId, use: KeyUse.SIGNING, jwkJson })).key?.id ?? "";
      const other = await generateKeyPair("ES256");
      const otherJwk = JSON.stringify(await exportJWK(other.publicKey));
      revokedKid = (await agents.addAgentKey({ agentId, use: KeyUse.SIGNING, jwkJson: otherJwk })).key?.id ?? "";
      await t.db.database.prisma.agentKey.update({ where: { id: revokedKid }, data: { revokedAt: new Date() } });
    });

    const now = () => Math.floor(Date.now() / 1000);
    const assertion = (o: { aud?: string; exp?: number; iss?: string; key?: CryptoKey; kid?: string } = {}) =>
      new SignJWT({})
        .setProtectedHeader({ alg: "ES256", kid: o.kid ?? kid })
        .setIssuer(o.iss ?? agentId)
        .setSubject(o.iss ?? agentId)
        .setAudience(o.aud ?? t.broker.url)
        .setIssuedAt(now() - 30)
        .setExpirationTime(o.exp ?? now() + 120)
        .setJti(randomUUID())
        .sign(o.key ?? signer);

    it.each([
      ["for another audience", () => assertion({ aud: "https://evil.example.com" })],
      ["that lives longer than five minutes", () => assertion({ exp: now() + 600 })],
      ["that has expired", () => assertion({ exp: now() - 10 })],
      ["signed by another key under a registered kid", () => assertion({ key: stranger })],
      ["naming another principal as issuer", () => assertion({ iss: person.principalId })],
      ["under a revoked key", () => assertion({ kid: revokedKid })],
      [
        "HMAC-signed under a registered kid",
        async () => {
          const header = b64({ alg: "HS256", kid });
          const body = b64({
            iss: agentId,
            sub: agentId,
            aud: t.broker.url,
            exp: now() + 60,
            iat: now(),
            jti: randomUUID(),
          });
          return `${header}.${body}.${createHmac("sha256", "guess").update(`${header}.${body}`).digest("base64url")}`;
        },
      ],
    ])("%s", async (_, make) => {
      const error = await failure(
        t
          .client(TokenService, { key: undefined })
          .mintToken({ audience: t.broker.url, scopes: [], clientAssertion: await make() }),
      );
      expect(error?.code).toBe(Code.Unauthenticated);
    });

    it("but accepts a well-formed one (the table above is not refusing everything)", async () => {
      const minted = await t
        .client(TokenService, { key: undefined })
        .mintToken({ audience: t.broker.url, scopes: [], clientAssertion: await assertion() });
      expect(minted.accessToken).toBeTruthy();
    });
  });

  it("binds a token to a DPoP key and accepts it only with a matching proof", async () => {
    const dpop = await createDpopKey();
    const minted = await tokens(agentKey, { dpop: await dpop.proof({ method: "POST", url: mintUrl() }) });
    expect(minted.tokenType).toBe("DPoP");
    const claims = await verifyAccessToken(minted.accessToken, {
      ...sdkOptions(),
      dpop: {
        proof: await dpop.proof({ method: "GET", url: "https://api.example.com/r", accessToken: minted.accessToken }),
        method: "GET",
        url: "https://api.example.com/r",
      },
    });
    expect(claims.cnf?.jkt).toBe(dpop.jkt);
    await expect(verifyAccessToken(minted.accessToken, sdkOptions())).rejects.toMatchObject({ code: "invalid_token" });

    // The broker itself: a token for the broker's audience, used on WhoAmI.
    const own = await t
      .client(TokenService, { key: agentKey })
      .mintToken(
        { audience: t.broker.url, scopes: [] },
        { headers: { dpop: await dpop.proof({ method: "POST", url: mintUrl() }) } },
      );
    const call = async (scheme: string, proof?: string) =>
      fetch(whoAmIUrl(), {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: `${scheme} ${own.accessToken}`,
          ...(proof ? { dpop: proof } : {}),
        },
        body: "{}",
      });
    const proof = await dpop.proof({ method: "POST", url: whoAmIUrl(), accessToken: own.accessToken });
    expect((await call("DPoP", proof)).status).toBe(200);
    expect((await call("DPoP", proof)).status).toBe(401); // replayed proof
    expect((await call("Bearer")).status).toBe(401); // bound token presented as Bearer
    const other = await createDpopKey();
    expect(
      (await call("DPoP", await other.proof({ method: "POST", url: whoAmIUrl(), accessToken: own.accessToken })))
        .status,
    ).toBe(401);
  });

  describe("verification refuses", () => {
    let good: string;
    beforeAll(async () => {
      good = (await tokens(agentKey)).accessToken;
    });
    const part = (i: number) => good.split(".")[i] as string;
    const [h, p, s] = [() => part(0), () => part(1), () => part(2)];
    const payload = () => JSON.parse(Buffer.from(p(), "base64url").toString()) as Record<string, unknown>;

    it.each([
      ["an expired token", () => good, { now: new Date(Date.now() + 3_600_000) }],
      ["a token for another audience", () => good, { audience: "https://other.example.com" }],
      ["a token from another issuer", () => good, { issuer: "https://evil.example.com" }],
      ["alg none", () => `${b64({ alg: "none", typ: "at+jwt" })}.${p()}.`, {}],
      ["a tampered payload", () => `${h()}.${b64({ ...payload(), scope: "reports.read admin" })}.${s()}`, {}],
      [
        "an unknown kid",
        () => `${b64({ ...JSON.parse(Buffer.from(h(), "base64url").toString()), kid: "sk_unknown" })}.${p()}.${s()}`,
        {},
      ],
      ["a JWT of another type", () => `${b64({ alg: "ES256", typ: "JWT", kid: "x" })}.${p()}.${s()}`, {}],
    ])("%s", async (_, token, overrides) => {
      await expect(verifyAccessToken(token(), { ...sdkOptions(), ...overrides })).rejects.toMatchObject({
        code: "invalid_token",
      });
    });

    it("HS256 signed with the broker's public key (algorithm confusion)", async () => {
      const jwks = (await (await fetch(`${t.broker.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
      const kid = jwks.keys[0]?.kid ?? "";
      const header = b64({ alg: "HS256", typ: "at+jwt", kid });
      const sig = createHmac("sha256", JSON.stringify(jwks.keys[0])).update(`${header}.${p()}`).digest("base64url");
      const forged = `${header}.${p()}.${sig}`;
      await expect(verifyAccessToken(forged, sdkOptions())).rejects.toMatchObject({ code: "invalid_token" });
      const res = await fetch(whoAmIUrl(), {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${forged}` },
        body: "{}",
      });
      expect(res.status).toBe(401);
    });
  });

  it("revokes by jti: the token stops working on the broker and introspects inactive", async () => {
    const own = await t.client(TokenService, { key: agentKey }).mintToken({ audience: t.broker.url, scopes: [] });
    const asAgent = t.client(PrincipalService, { key: own.accessToken });
    expect((await asAgent.whoAmI({})).principal?.id).toBe(agentId);
    await t.client(TokenService, { key: own.accessToken }).revokeToken({ jti: own.jti });
    await expect(asAgent.whoAmI({})).rejects.toMatchObject({ code: Code.Unauthenticated });
    const introspected = await t.client(TokenService).introspectToken({ token: own.accessToken });
    expect(introspected.active).toBe(false);
  });

  it("lets only the owner or a token.revoke holder of its tenant revoke by jti; made-up jtis revoke nothing", async () => {
    const own = await tokens(agentKey);
    const works = async () =>
      expect((await t.client(TokenService).introspectToken({ token: own.accessToken })).active).toBe(true);
    const peer = await createActor(t, { tenantId: person.tenantId, kind: "service" });
    const refused = await failure(t.client(TokenService, { key: peer.key }).revokeToken({ jti: own.jti }));
    expect(refused?.code).toBe(Code.PermissionDenied);
    expect(reasonOf(refused)).toBe("NOT_TOKEN_OWNER");
    // Another tenant's revoker cannot tell the token exists, let alone revoke it.
    const foreign = await createActor(t, { kind: "service", scopes: ["token.revoke"] });
    await t.client(TokenService, { key: foreign.key }).revokeToken({ jti: own.jti });
    // A jti in the owner's name with another random part, or no jti shape at all, names no token.
    const [owner, exp] = own.jti.split(".");
    const asAgent = t.client(TokenService, { key: agentKey });
    await asAgent.revokeToken({ jti: `${owner}.${exp}.${"A".repeat(22)}` });
    await asAgent.revokeToken({ jti: randomUUID() });
    await expect(asAgent.revokeToken({ jti: "x".repeat(129) })).rejects.toMatchObject({
      code: Code.InvalidArgument,
    });
    await works();

    const revoker = await createActor(t, { tenantId: person.tenantId, kind: "service", scopes: ["token.revoke"] });
    await t.client(TokenService, { key: revoker.key }).revokeToken({ jti: own.jti });
    expect((await t.client(TokenService).introspectToken({ token: own.accessToken })).active).toBe(false);
  });

  it("publishes no revocation for a jti whose expiry is beyond any token's life", async () => {
    const own = await tokens(agentKey);
    const [owner] = own.jti.split(".");
    const feed = () => t.db.database.prisma.revocationEvent.count();
    const before = await feed();
    // The owner's own id, a well-formed random part, and an expiry in the year 2100.
    const farFuture = Math.floor(Date.UTC(2100, 0, 1) / 1000).toString(36);
    await t.client(TokenService, { key: agentKey }).revokeToken({ jti: `${owner}.${farFuture}.${"A".repeat(22)}` });
    expect(await feed()).toBe(before);
    // A real token of the same owner is still revoked by its jti.
    await t.client(TokenService, { key: agentKey }).revokeToken({ jti: own.jti });
    expect(await feed()).toBe(before + 1);
  });

  it("introspects for holders of introspect.token only, and only within their tenant", async () => {
    const minted = await tokens(agentKey);
    const rs = await createActor(t, { tenantId: person.tenantId, kind: "service", scopes: ["introspect.token"] });
    const result = await t.client(TokenService, { key: rs.key }).introspectToken({ token: minted.accessToken });
    expect(result).toMatchObject({
      active: true,
      sub: agentId,
      scope: "reports.read",
      tokenType: "Bearer",
      jti: minted.jti,
    });
    const outsider = await createActor(t, { kind: "service", scopes: ["introspect.token"] });
    expect(
      (await t.client(TokenService, { key: outsider.key }).introspectToken({ token: minted.accessToken })).active,
    ).toBe(false);
    await expect(
      t.client(TokenService, { key: person.key }).introspectToken({ token: minted.accessToken }),
    ).rejects.toMatchObject({
      code: Code.PermissionDenied,
    });
    expect((await t.client(TokenService, { key: rs.key }).introspectToken({ token: "garbage" })).active).toBe(false);
  });

  it("voids a suspended agent's tokens at once and refuses to mint for it", async () => {
    const agents = t.client(AgentService, { key: person.key });
    const { agent } = await agents.registerAgent({ displayName: "Short-lived", scopes: [] });
    const key = (await t.client(ApiKeyService, { key: person.key }).createApiKey({ principalId: agent?.id ?? "" }))
      .secret;
    const own = await t.client(TokenService, { key }).mintToken({ audience: t.broker.url, scopes: [] });
    await agents.suspendAgent({ agentId: agent?.id ?? "" });
    await expect(t.client(PrincipalService, { key: own.accessToken }).whoAmI({})).rejects.toMatchObject({
      code: Code.Unauthenticated,
    });
    await expect(
      t.client(TokenService, { key }).mintToken({ audience: t.broker.url, scopes: [] }),
    ).rejects.toMatchObject({
      code: Code.Unauthenticated,
    });
    await agents.reactivateAgent({ agentId: agent?.id ?? "" });
    t.clock.advance(1_100); // into the next second: tokens from the suspension's own second stay void
    const fresh = await t.client(TokenService, { key }).mintToken({ audience: t.broker.url, scopes: [] });
    expect((await t.client(PrincipalService, { key: fresh.accessToken }).whoAmI({})).principal?.id).toBe(agent?.id);
    await expect(t.client(PrincipalService, { key: own.accessToken }).whoAmI({})).rejects.toMatchObject({
      code: Code.Unauthenticated,
    });
    await agents.revokeAgent({ agentId: agent?.id ?? "" });
    await expect(t.client(PrincipalService, { key: fresh.accessToken }).whoAmI({})).rejects.toMatchObject({
      code: Code.Unauthenticated,
    });
    await expect(
      t.client(TokenService, { key }).mintToken({ audience: t.broker.url, scopes: [] }),
    ).rejects.toMatchObject({
      code: Code.Unauthenticated,
    });
  });

  it("keeps a rotated API key working through the grace period only", async () => {
    const created = await t
      .client(ApiKeyService, { key: person.key })
      .createApiKey({ principalId: agentId, label: "rotating" });
    const rotated = await t
      .client(ApiKeyService, { key: person.key })
      .rotateApiKey({ keyId: created.key?.id ?? "", gracePeriod: seconds(1) });
    const mint = (key: string) => t.client(TokenService, { key }).mintToken({ audience: t.broker.url, scopes: [] });
    await mint(created.secret);
    await mint(rotated.secret);
    t.clock.advance(1_100); // past the grace period
    await expect(mint(created.secret)).rejects.toMatchObject({ code: Code.Unauthenticated });
    await mint(rotated.secret);
  });

  it("ends a token no later than the expiring key that minted it, and says so in expires_in", async () => {
    const keyFor = async (principalId: string) => {
      const { key, secret } = await t
        .client(ApiKeyService, { key: person.key })
        .createApiKey({ principalId, label: "one minute", ttl: seconds(60) });
      const row = await t.db.database.prisma.apiKey.findUniqueOrThrow({ where: { id: key?.id ?? "" } });
      return { secret, expiresAt: row.expiresAt?.getTime() ?? 0 };
    };
    const claimsOf = (token: string) =>
      JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()) as { iat: number; exp: number };
    const asked = [
      // The broker's audience, asking for its 15-minute maximum ...
      { principalId: person.principalId, audience: t.broker.url, scopes: ["agent.register"], lifetime: seconds(900) },
      // ... and a resource server's, at its default lifetime.
      { principalId: agentId, audience: "https://api.example.com", scopes: ["reports.read"] },
    ];
    for (const { principalId, ...request } of asked) {
      const key = await keyFor(principalId);
      const minted = await t.client(TokenService, { key: key.secret }).mintToken(request);
      const { iat, exp } = claimsOf(minted.accessToken);
      expect(exp * 1000).toBeLessThanOrEqual(key.expiresAt);
      expect(minted.expiresIn).toBe(exp - iat);
      expect(minted.expiresIn).toBeLessThanOrEqual(60);
    }
    // A key that never expires gets what it asks for.
    const lasting = await t
      .client(TokenService, { key: person.key })
      .mintToken({ audience: t.broker.url, scopes: ["agent.register"], lifetime: seconds(900) });
    expect(lasting.expiresIn).toBe(900);
  });

  it("rotates signing keys in stages and retires a compromised one at once", async () => {
    const jwks = async () =>
      ((await (await fetch(`${t.broker.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] }).keys.map(
        (k) => k.kid,
      );
    const before = await tokens(agentKey);
    const kidOf = (token: string) =>
      JSON.parse(Buffer.from(token.split(".")[0] ?? "", "base64url").toString()).kid as string;
    const published = await jwks();
    expect(published.length).toBe(2); // active + next, published before it signs
    await t.client(TokenService).rotateSigningKeys({});
    const after = await tokens(agentKey);
    expect(kidOf(after.accessToken)).not.toBe(kidOf(before.accessToken));
    expect(published).toContain(kidOf(after.accessToken));
    const fresh = {
      ...sdkOptions(),
      jwks: { keys: (await (await fetch(`${t.broker.url}/.well-known/jwks.json`)).json()).keys },
    };
    await verifyAccessToken(before.accessToken, fresh); // the retiring key still verifies
    await t.client(TokenService).retireSigningKey({ kid: kidOf(before.accessToken) });
    const afterRetire = {
      ...sdkOptions(),
      jwks: { keys: (await (await fetch(`${t.broker.url}/.well-known/jwks.json`)).json()).keys },
    };
    await expect(verifyAccessToken(before.accessToken, afterRetire)).rejects.toMatchObject({ code: "invalid_token" });
    await verifyAccessToken(after.accessToken, afterRetire);
  });

  it("never lets a member issue itself a key for a more privileged principal", async () => {
    const member = await createActor(t, { tenantId: person.tenantId, scopes: ["apikey.create"] });
    const error = await failure(
      t.client(ApiKeyService, { key: member.key }).createApiKey({ principalId: person.principalId }),
    );
    expect(error?.code).toBe(Code.PermissionDenied);
    expect(reasonOf(error)).toBe("SCOPE_ESCALATION");
    const events = await t.db.database.prisma.auditEvent.findMany({
      where: { actorId: member.principalId, outcome: "denied" },
    });
    expect(events.map((e) => [e.action, e.target, e.reason.split(":")[0]])).toEqual([
      ["apikey.create", person.principalId, "SCOPE_ESCALATION"],
    ]);
  });

  it("refuses status changes on oneself, even with the grant, and impossible transitions", async () => {
    const agents = t.client(AgentService, { key: person.key });
    const { agent: selfish } = await agents.registerAgent({ displayName: "Self-suspender", scopes: ["agent.suspend"] });
    const selfishKey = (
      await t.client(ApiKeyService, { key: person.key }).createApiKey({ principalId: selfish?.id ?? "" })
    ).secret;
    const self = await failure(
      t.client(AgentService, { key: selfishKey }).suspendAgent({ agentId: selfish?.id ?? "" }),
    );
    expect(self?.code).toBe(Code.PermissionDenied);
    expect(reasonOf(self)).toBe("SELF_STATUS_CHANGE");
    const denied = await t.db.database.prisma.auditEvent.findMany({
      where: { actorId: selfish?.id, action: "agent.suspend" },
    });
    expect(denied.map((e) => [e.outcome, e.target, e.reason])).toEqual([["denied", selfish?.id, "SELF_STATUS_CHANGE"]]);
    const again = await failure(agents.reactivateAgent({ agentId }));
    expect(again?.code).toBe(Code.FailedPrecondition);
  });
});

describe("lifetimeWithin (an access token ends no later than the credential presented)", () => {
  const at = (seconds: number) => new Date(seconds * 1000);
  const caller = (credentialExpiresAt?: Date): Caller => ({
    principalId: "prn_test",
    tenantId: "ten_test",
    kind: "agent",
    scopes: new ScopeSet([]),
    credentialType: "api_key",
    credentialId: "key",
    ...(credentialExpiresAt ? { credentialExpiresAt } : {}),
  });
  const cases: { name: string; expires?: Date; now: Date; asked: number; lifetime: number | "refused" }[] = [
    { name: "a credential without expiry: as asked", now: at(1_000.5), asked: 900, lifetime: 900 },
    { name: "one that outlives the token: as asked", expires: at(5_000), now: at(1_000.5), asked: 900, lifetime: 900 },
    {
      name: "one that ends first: whole seconds left, from the whole second of now (iat)",
      expires: at(1_030.2),
      now: at(1_000.9),
      asked: 900,
      lifetime: 30,
    },
    {
      name: "one ending within the same second: refused",
      expires: at(1_000.9),
      now: at(1_000.1),
      asked: 900,
      lifetime: "refused",
    },
  ];
  for (const { name, expires, now, asked, lifetime } of cases) {
    it(name, () => {
      const run = () => lifetimeWithin(caller(expires), now, asked);
      if (lifetime === "refused") {
        expect(run).toThrow(
          expect.objectContaining({ code: "permission_denied", reason: "CREDENTIAL_OUTLIVES_PRESENTED" }),
        );
      } else {
        expect(run()).toBe(lifetime);
      }
    });
  }
});
