// No credential can be widened: issuing or re-issuing any credential for a
// principal needs the credential presented on the call to cover every grant
// of that principal, the caller's own principal included, and a credential
// that expires issues nothing that outlives it
// (src/policy/credential-issuance.ts). First the attacks outside testers
// found (A–I), each as its own test; then the issuing calls against an
// expiring credential, and the matrix of every credential-issuing call
// against every kind of narrowed caller.
import { randomUUID } from "node:crypto";
import { Code, createClient, type Transport } from "@connectrpc/connect";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentService, KeyUse } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { ApiKeyService } from "../../gen/proto/aegis/apikey/v1/apikey_pb.js";
import { DeviceAuthService } from "../../gen/proto/aegis/device/v1/device_pb.js";
import { GrantService } from "../../gen/proto/aegis/grant/v1/grant_pb.js";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { TenantService } from "../../gen/proto/aegis/tenant/v1/tenant_pb.js";
import { TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import { publicBase } from "../support/agents.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { failure, reasonOf } from "../support/errors.js";
import { type Actor, createActor, registerApi, seconds } from "../support/fixtures.js";

describe.each(databaseKinds)("no credential can be widened on %s", (kind) => {
  let t: TestBroker;
  /** The bootstrap admin: holds broker.admin and every action. */
  let adminId: string;
  let adminTenant: string;
  let n = 0;
  const unique = (name: string) => `https://${name}-${++n}.example.com`;
  const prisma = () => t.db.database.prisma;

  beforeAll(async () => {
    t = await startTestBroker(kind);
    adminId = t.broker.bootstrap?.principalId ?? "";
    adminTenant = (await prisma().principal.findUniqueOrThrow({ where: { id: adminId } })).tenantId;
  });
  afterAll(() => t.stop());

  /** A user API token of the admin limited to `scopes`. */
  const userToken = async (scopes: string[]) =>
    (await t.client(TokenService).mintUserApiToken({ scopes, label: "narrow" })).secret;
  /** A broker token minted with `key`, narrowed to `scopes`. */
  const brokerToken = async (key: string, scopes: string[]) =>
    (await t.client(TokenService, { key }).mintToken({ audience: publicBase(t), scopes })).accessToken;
  const signingJwk = async () => {
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    return { privateKey, jwkJson: JSON.stringify(await exportJWK(publicKey)) };
  };
  const keyCount = (principalId: string) => prisma().apiKey.count({ where: { principalId } });

  it("A: a user API token limited to apikey.create gets no key for its owner", async () => {
    const narrow = await userToken(["apikey.create"]);
    const before = await keyCount(adminId);
    const error = await failure(t.client(ApiKeyService, { key: narrow }).createApiKey({ principalId: adminId }));
    expect(error?.code).toBe(Code.PermissionDenied);
    expect(reasonOf(error)).toBe("SCOPE_ESCALATION");
    expect(await keyCount(adminId)).toBe(before);
  });

  it("B: a user API token limited to agent.key.add registers no signing key for its owner, so no assertion", async () => {
    const narrow = await userToken(["agent.key.add"]);
    const { privateKey, jwkJson } = await signingJwk();
    const error = await failure(
      t.client(AgentService, { key: narrow }).addAgentKey({ agentId: adminId, use: KeyUse.SIGNING, jwkJson }),
    );
    expect(error?.code).toBe(Code.PermissionDenied);
    expect(reasonOf(error)).toBe("SCOPE_ESCALATION");
    expect(await prisma().agentKey.count({ where: { principalId: adminId } })).toBe(0);
    // Without a registered key, an assertion signed by it authenticates nobody.
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid: "kid_aaaaaaaaaaaaaaaaaaaa" })
      .setIssuer(adminId)
      .setSubject(adminId)
      .setAudience(publicBase(t))
      .setIssuedAt()
      .setExpirationTime("2m")
      .setJti(randomUUID())
      .sign(privateKey);
    const minted = await failure(
      t
        .client(TokenService, { key: undefined })
        .mintToken({ audience: publicBase(t), scopes: ["tenant.create"], clientAssertion: assertion }),
    );
    expect(minted?.code).toBe(Code.Unauthenticated);
  });

  it("C: a user API token limited to account.password.set cannot set its owner's password", async () => {
    const narrow = await userToken(["account.password.set"]);
    const error = await failure(
      t
        .client(DeviceAuthService, { key: narrow })
        .setLocalPassword({ principalId: adminId, username: "taken-over", password: "a long enough password" }),
    );
    expect(error?.code).toBe(Code.PermissionDenied);
    expect(reasonOf(error)).toBe("SCOPE_ESCALATION");
    expect(await prisma().localAccount.count({ where: { principalId: adminId } })).toBe(0);
  });

  it("D: rotating a user API token re-issues a user API token with its scopes and expiry, never an API key", async () => {
    const minted = await t.client(TokenService).mintUserApiToken({ scopes: ["apikey.rotate"], label: "rotating" });
    const expiry = (await prisma().apiKey.findUniqueOrThrow({ where: { id: minted.tokenId } })).expiresAt;
    // The token itself may not rotate itself: it does not cover its owner's grants.
    const byItself = await failure(
      t.client(ApiKeyService, { key: minted.secret }).rotateApiKey({ keyId: minted.tokenId }),
    );
    expect(reasonOf(byItself)).toBe("SCOPE_ESCALATION");
    // Its owner may, and gets the same kind of credential back.
    const rotated = await t.client(ApiKeyService).rotateApiKey({ keyId: minted.tokenId });
    expect(rotated.secret).toMatch(/^aegis_ut_/);
    const successor = await prisma().apiKey.findUniqueOrThrow({ where: { id: rotated.key?.id ?? "" } });
    expect(successor).toMatchObject({ kind: "user_token", scopes: "apikey.rotate", principalId: adminId });
    expect(successor.expiresAt).toEqual(expiry);
    const { scopes } = await t.client(PrincipalService, { key: rotated.secret }).whoAmI({});
    expect(scopes).toEqual(["apikey.rotate"]);
  });

  it("E: an agent's broker token narrowed to apikey.create creates no key for the agent", async () => {
    const { agent } = await t
      .client(AgentService)
      .registerAgent({ displayName: "narrowed", scopes: ["apikey.create", "agent.read"] });
    const agentId = agent?.id ?? "";
    const agentKey = (await t.client(ApiKeyService).createApiKey({ principalId: agentId })).secret;
    const narrow = await brokerToken(agentKey, ["apikey.create"]);
    const before = await keyCount(agentId);
    const error = await failure(t.client(ApiKeyService, { key: narrow }).createApiKey({ principalId: agentId }));
    expect(error?.code).toBe(Code.PermissionDenied);
    expect(reasonOf(error)).toBe("SCOPE_ESCALATION");
    expect(await keyCount(agentId)).toBe(before);
    // With its own full key the agent may (the credential covers all it holds).
    await t.client(ApiKeyService, { key: agentKey }).createApiKey({ principalId: agentId });
    expect(await keyCount(agentId)).toBe(before + 1);
  });

  it("F: an agent holding only agent.key.add registers no key for a more privileged principal", async () => {
    const agents = t.client(AgentService);
    const { agent: weak } = await agents.registerAgent({ displayName: "weak", scopes: ["agent.key.add"] });
    const { agent: strong } = await agents.registerAgent({ displayName: "strong", scopes: ["tenant.create"] });
    const weakKey = (await t.client(ApiKeyService).createApiKey({ principalId: weak?.id ?? "" })).secret;
    for (const target of [strong?.id ?? "", adminId]) {
      const { jwkJson } = await signingJwk();
      const error = await failure(
        t.client(AgentService, { key: weakKey }).addAgentKey({ agentId: target, use: KeyUse.SIGNING, jwkJson }),
      );
      expect(error?.code).toBe(Code.PermissionDenied);
      expect(reasonOf(error)).toBe("SCOPE_ESCALATION");
      expect(await prisma().agentKey.count({ where: { principalId: target } })).toBe(0);
    }
    // Its own key it may register.
    const { jwkJson } = await signingJwk();
    await t
      .client(AgentService, { key: weakKey })
      .addAgentKey({ agentId: weak?.id ?? "", use: KeyUse.SIGNING, jwkJson });
  });

  it("G: rotating a user API token made for a resource server re-issues one for that server, never a broker token", async () => {
    // The server's catalogue names a scope that is also a broker action (both grammars allow it).
    const person = await createActor(t, {
      tenantId: adminTenant,
      scopes: ["token.user.create", "apikey.rotate", "agent.read"],
    });
    const api = await registerApi(t, t.adminKey, {
      identifier: unique("rotated"),
      scopes: ["agent.read", "repo.read"],
      grants: { [person.principalId]: ["agent.read", "repo.read"] },
    });
    const mint = (key: string, audience: string, scopes: string[]) =>
      t.client(TokenService, { key }).mintToken({ audience, scopes });
    const minted = await t
      .client(TokenService, { key: person.key })
      .mintUserApiToken({ audience: api.identifier, scopes: ["agent.read", "repo.read"], label: "ci" });
    const before = await prisma().apiKey.findUniqueOrThrow({ where: { id: minted.tokenId } });
    const rotated = await t.client(ApiKeyService, { key: person.key }).rotateApiKey({ keyId: minted.tokenId });
    // The server's `agent.read` did not become the broker's ...
    expect((await t.client(PrincipalService, { key: rotated.secret }).whoAmI({})).scopes).toEqual([]);
    expect(reasonOf(await failure(mint(rotated.secret, publicBase(t), ["agent.read"])))).toBe("SCOPE_NOT_GRANTED");
    // ... and the successor is exactly what it replaces: same server, same scopes, same expiry.
    const after = await prisma().apiKey.findUniqueOrThrow({ where: { id: rotated.key?.id ?? "" } });
    expect(after).toMatchObject({
      kind: "user_token",
      resourceServerId: api.id,
      scopes: before.scopes,
      expiresAt: before.expiresAt,
    });
    expect((await mint(rotated.secret, api.identifier, ["repo.read"])).scope).toBe("repo.read");
  });

  it("H: a server scope named broker.admin does not come back from rotation as the elevated grant", async () => {
    const api = await registerApi(t, t.adminKey, { identifier: unique("elevated"), scopes: ["broker.admin"] });
    // Another admin of that server gives the bootstrap admin its `broker.admin` (nobody grants themselves).
    const coAdmin = await createActor(t, {
      tenantId: adminTenant,
      scopes: ["grant.create", `resource_server.admin:server:${api.id}`],
    });
    await t
      .client(GrantService, { key: coAdmin.key })
      .createGrant({ principalId: adminId, scope: "broker.admin", resourceServerId: api.id });
    const appToken = await t
      .client(TokenService)
      .mintUserApiToken({ audience: api.identifier, scopes: ["broker.admin"], label: "app only" });
    const rotated = await t.client(ApiKeyService).rotateApiKey({ keyId: appToken.tokenId });
    // MintUserApiToken refuses the elevated grant in a user API token; rotation hands it out neither.
    expect((await t.client(PrincipalService, { key: rotated.secret }).whoAmI({})).scopes).toEqual([]);
  });

  it("I: an OAuth client is registered for no resource server its registrar has no part in", async () => {
    // The registrar holds oauth_client.create and nothing of the server; the victim holds repo.write there.
    const registrar = await createActor(t, { tenantId: adminTenant, scopes: ["oauth_client.create"] });
    const victim = await createActor(t, { tenantId: adminTenant });
    const api = await registerApi(t, t.adminKey, {
      identifier: unique("phished"),
      scopes: ["repo.read", "repo.write"],
      grants: { [victim.principalId]: ["repo.write"] },
    });
    const register = (key: string, allowedAudiences: string[]) =>
      t.client(DeviceAuthService, { key }).createOAuthClient({ name: "looks official", allowedAudiences });
    const clients = () => prisma().oAuthClient.count({ where: { tenantId: adminTenant } });
    const before = await clients();
    const refused = await failure(register(registrar.key, [api.identifier]));
    expect(refused?.code).toBe(Code.PermissionDenied);
    expect(reasonOf(refused)).toBe("SCOPE_ESCALATION");
    // Nor for a server of another tenant, or none: both are not a server of this tenant.
    const elsewhere = await createActor(t, { scopes: ["resource_server.create"] });
    const foreign = await registerApi(t, elsewhere.key, { identifier: unique("foreign"), scopes: ["repo.read"] });
    for (const audience of [foreign.identifier, unique("unregistered")]) {
      const unknown = await failure(register(registrar.key, [audience]));
      expect(unknown?.code).toBe(Code.InvalidArgument);
      expect(reasonOf(unknown)).toBe("INVALID_TARGET");
    }
    expect(await clients()).toBe(before);
    // Holding a scope of the server, or administering it, is a part in it; the broker is always allowed.
    await t
      .client(GrantService)
      .createGrant({ principalId: registrar.principalId, scope: "repo.read", resourceServerId: api.id });
    await register(registrar.key, [api.identifier, publicBase(t)]);
    await register(t.adminKey, [api.identifier]);
    expect(await clients()).toBe(before + 2);
  });

  it("revoking another principal's API key or public key needs the same right", async () => {
    const agents = t.client(AgentService);
    const { agent } = await agents.registerAgent({
      displayName: "revoker",
      scopes: ["apikey.revoke", "agent.key.revoke"],
    });
    const revoker = (await t.client(ApiKeyService).createApiKey({ principalId: agent?.id ?? "" })).secret;
    const adminKey = await t.client(ApiKeyService).createApiKey({ principalId: adminId, label: "victim" });
    const { jwkJson } = await signingJwk();
    const adminPublicKey = await agents.addAgentKey({ agentId: adminId, use: KeyUse.SIGNING, jwkJson });
    const asRevoker = t.client(AgentService, { key: revoker });
    expect(
      reasonOf(
        await failure(t.client(ApiKeyService, { key: revoker }).revokeApiKey({ keyId: adminKey.key?.id ?? "" })),
      ),
    ).toBe("SCOPE_ESCALATION");
    expect(reasonOf(await failure(asRevoker.revokeAgentKey({ keyId: adminPublicKey.key?.id ?? "" })))).toBe(
      "SCOPE_ESCALATION",
    );
    expect((await prisma().apiKey.findUniqueOrThrow({ where: { id: adminKey.key?.id ?? "" } })).revokedAt).toBe(null);
    // Its own credentials it may revoke.
    const own = await t.client(ApiKeyService).createApiKey({ principalId: agent?.id ?? "" });
    await t.client(ApiKeyService, { key: revoker }).revokeApiKey({ keyId: own.key?.id ?? "" });
  });

  describe("a credential that expires issues nothing that outlives it", () => {
    // A person, and a user API token of theirs for one hour carrying every
    // grant they hold, so the coverage rule alone would let it issue anything.
    const held = ["token.user.create", "apikey.create", "apikey.rotate", "agent.read"];
    let person: Actor;
    let hour: { secret: string; id: string; expiresAt: Date };
    const tokens = () => t.client(TokenService, { key: hour.secret });
    const keys = () => t.client(ApiKeyService, { key: hour.secret });
    const keyCount = () => prisma().apiKey.count({ where: { principalId: person.principalId } });
    const expiryOf = async (id: string) => (await prisma().apiKey.findUniqueOrThrow({ where: { id } })).expiresAt;

    beforeAll(async () => {
      person = await createActor(t, { tenantId: adminTenant, scopes: held });
      const minted = await t
        .client(TokenService, { key: person.key })
        .mintUserApiToken({ scopes: held, label: "one hour", ttl: seconds(3_600) });
      hour = { secret: minted.secret, id: minted.tokenId, expiresAt: (await expiryOf(minted.tokenId)) as Date };
    });

    const outliving: { name: string; call: () => Promise<unknown>; count: () => Promise<number> }[] = [
      {
        name: "MintUserApiToken for 400 days",
        call: () => tokens().mintUserApiToken({ scopes: ["agent.read"], label: "long", ttl: seconds(400 * 86_400) }),
        count: keyCount,
      },
      {
        name: "MintUserApiToken for its default 90 days",
        call: () => tokens().mintUserApiToken({ scopes: ["agent.read"], label: "default" }),
        count: keyCount,
      },
      {
        name: "CreateApiKey that never expires",
        call: () => keys().createApiKey({ principalId: person.principalId }),
        count: keyCount,
      },
      {
        name: "CreateApiKey for two hours",
        call: () => keys().createApiKey({ principalId: person.principalId, ttl: seconds(7_200) }),
        count: keyCount,
      },
      {
        name: "RotateApiKey of a key that never expires",
        call: () => keys().rotateApiKey({ keyId: person.keyId }),
        count: keyCount,
      },
      {
        name: "ApproveDeviceAuthorization (its refresh tokens live for days)",
        call: async () => {
          const started = await t
            .client(DeviceAuthService, { key: undefined })
            .beginDeviceAuthorization({ clientId: "aegis-cli", scopes: ["agent.read"] });
          return t
            .client(DeviceAuthService, { key: hour.secret })
            .approveDeviceAuthorization({ userCode: started.userCode });
        },
        count: () => prisma().deviceAuthorization.count({ where: { principalId: person.principalId } }),
      },
    ];

    for (const issuing of outliving) {
      it(`${issuing.name} is refused, naming the presented credential's expiry, audited, and creates nothing`, async () => {
        const before = await issuing.count();
        const denied = () => prisma().auditEvent.count({ where: { actorId: person.principalId, outcome: "denied" } });
        const deniedBefore = await denied();
        const error = await failure(issuing.call());
        expect(error?.code).toBe(Code.PermissionDenied);
        expect(reasonOf(error)).toBe("CREDENTIAL_OUTLIVES_PRESENTED");
        expect(error?.rawMessage).toContain(`expires at ${hour.expiresAt.toISOString()}`);
        expect(await issuing.count()).toBe(before);
        expect(await denied()).toBe(deniedBefore + 1);
      });
    }

    it("issues what ends with it or before: a shorter token or key, and its own rotation", async () => {
      const child = await tokens().mintUserApiToken({ scopes: ["agent.read"], label: "short", ttl: seconds(1_800) });
      expect((await expiryOf(child.tokenId))?.getTime()).toBeLessThanOrEqual(hour.expiresAt.getTime());
      const key = await keys().createApiKey({ principalId: person.principalId, ttl: seconds(1_800) });
      expect((await expiryOf(key.key?.id ?? ""))?.getTime()).toBeLessThanOrEqual(hour.expiresAt.getTime());
      const rotated = await keys().rotateApiKey({ keyId: hour.id });
      expect(await expiryOf(rotated.key?.id ?? "")).toEqual(hour.expiresAt);
    });

    it("binds the broker tokens it mints the same way: minting one is no step around the rule", async () => {
      const minted = await tokens().mintToken({ audience: publicBase(t), scopes: held });
      const bounded = t.client(ApiKeyService, { key: minted.accessToken });
      // Each call is made only when awaited: a refusal made earlier would be an unhandled rejection.
      for (const outliving of [
        () => bounded.createApiKey({ principalId: person.principalId }),
        () => bounded.createApiKey({ principalId: person.principalId, ttl: seconds(3_600) }),
        () =>
          t.client(TokenService, { key: minted.accessToken }).mintUserApiToken({ scopes: ["agent.read"], label: "x" }),
      ]) {
        const error = await failure(outliving());
        expect(error?.code).toBe(Code.PermissionDenied);
        expect(reasonOf(error)).toBe("CREDENTIAL_OUTLIVES_PRESENTED");
      }
      // Within the token's own life it still issues.
      const short = await bounded.createApiKey({ principalId: person.principalId, ttl: seconds(60) });
      expect(short.key?.id).toBeTruthy();
      // A broker token minted by a key that never expires stays a session: what it makes may last.
      const session = await t
        .client(TokenService, { key: person.key })
        .mintToken({ audience: publicBase(t), scopes: held });
      const lasting = await t
        .client(ApiKeyService, { key: session.accessToken })
        .createApiKey({ principalId: person.principalId });
      expect(await expiryOf(lasting.key?.id ?? "")).toBe(null);
    });

    it("binds only credentials with an expiry: the person's key that never expires still issues one that lasts", async () => {
      const lasting = await t
        .client(ApiKeyService, { key: person.key })
        .createApiKey({ principalId: person.principalId });
      expect(await expiryOf(lasting.key?.id ?? "")).toBe(null);
    });
  });

  describe("matrix: every credential-issuing RPC against every narrowed caller", () => {
    /** A call that would issue a credential for `target`, made with `key`, and how to count what it creates. */
    interface Issuing {
      readonly name: string;
      readonly action: string;
      /** What the caller must hold to pass the RPC's own policy. */
      readonly scopes: string[];
      /** Whether the RPC only ever issues for the caller itself (no other target to aim at). */
      readonly selfOnly?: boolean;
      readonly personsOnly?: boolean;
      call(transport: (key: string) => Transport, key: string, target: string): Promise<unknown>;
      count(target: string): Promise<number>;
    }
    const calls: Issuing[] = [
      {
        name: "ApiKeyService CreateApiKey",
        action: "apikey.create",
        scopes: ["apikey.create"],
        call: async (tr, key, target) => createClient(ApiKeyService, tr(key)).createApiKey({ principalId: target }),
        count: (target) => prisma().apiKey.count({ where: { principalId: target } }),
      },
      {
        name: "ApiKeyService RotateApiKey",
        action: "apikey.rotate",
        scopes: ["apikey.rotate"],
        call: async (tr, key, target) => {
          const victim = await t.client(ApiKeyService).createApiKey({ principalId: target, label: "to rotate" });
          return createClient(ApiKeyService, tr(key)).rotateApiKey({ keyId: victim.key?.id ?? "" });
        },
        count: (target) => prisma().apiKey.count({ where: { principalId: target, label: { not: "to rotate" } } }),
      },
      {
        name: "AddAgentKey (signing)",
        action: "agent.key.add",
        scopes: ["agent.key.add"],
        call: async (tr, key, target) =>
          createClient(AgentService, tr(key)).addAgentKey({
            agentId: target,
            use: KeyUse.SIGNING,
            jwkJson: (await signingJwk()).jwkJson,
          }),
        count: (target) => prisma().agentKey.count({ where: { principalId: target, use: "signing" } }),
      },
      {
        name: "AddAgentKey (encryption)",
        action: "agent.key.add",
        scopes: ["agent.key.add"],
        call: async (tr, key, target) => {
          const pair = await generateKeyPair("ECDH-ES+A256KW", { crv: "X25519", extractable: true });
          return createClient(AgentService, tr(key)).addAgentKey({
            agentId: target,
            use: KeyUse.ENCRYPTION,
            jwkJson: JSON.stringify(await exportJWK(pair.publicKey)),
          });
        },
        count: (target) => prisma().agentKey.count({ where: { principalId: target, use: "encryption" } }),
      },
      {
        name: "SetLocalPassword",
        action: "account.password.set",
        scopes: ["account.password.set"],
        personsOnly: true,
        call: async (tr, key, target) =>
          createClient(DeviceAuthService, tr(key)).setLocalPassword({
            principalId: target,
            username: `u-${randomUUID().slice(0, 8)}`,
            password: "a long enough password",
          }),
        count: (target) => prisma().localAccount.count({ where: { principalId: target } }),
      },
      {
        name: "MintUserApiToken",
        action: "token.user.create",
        scopes: ["token.user.create", "agent.read"],
        selfOnly: true,
        personsOnly: true,
        call: async (tr, key) =>
          createClient(TokenService, tr(key)).mintUserApiToken({ scopes: ["agent.read"], label: "chained" }),
        count: (target) => prisma().apiKey.count({ where: { principalId: target, kind: "user_token" } }),
      },
      {
        name: "ApproveDeviceAuthorization",
        action: "device.approve",
        scopes: ["agent.read"],
        selfOnly: true,
        personsOnly: true,
        call: async (tr, key) => {
          const started = await t
            .client(DeviceAuthService, { key: undefined })
            .beginDeviceAuthorization({ clientId: "aegis-cli", scopes: ["agent.read"] });
          return createClient(DeviceAuthService, tr(key)).approveDeviceAuthorization({ userCode: started.userCode });
        },
        count: () => prisma().deviceAuthorization.count({ where: { status: "approved" } }),
      },
    ];

    /** The narrowed callers: each yields a credential to call with and the principal it would widen. */
    const callers: {
      readonly name: string;
      readonly setup: (call: Issuing) => Promise<{ key: string; target: string; actor: string } | undefined>;
    }[] = [
      {
        name: "a user API token",
        setup: async (call) => ({ key: await userToken(call.scopes), target: adminId, actor: adminId }),
      },
      {
        name: "a narrowed broker token",
        setup: async (call) => ({ key: await brokerToken(t.adminKey, call.scopes), target: adminId, actor: adminId }),
      },
      {
        name: "an agent holding only that action",
        setup: async (call) => {
          if (call.personsOnly && call.selfOnly) return undefined; // refused as not a person: covered below
          const { agent } = await t
            .client(AgentService)
            .registerAgent({ displayName: "one action", scopes: call.scopes });
          const key = (await t.client(ApiKeyService).createApiKey({ principalId: agent?.id ?? "" })).secret;
          return { key, target: adminId, actor: agent?.id ?? "" };
        },
      },
      {
        name: "a member of another tenant",
        setup: async (call) => {
          if (call.selfOnly) return undefined; // issues only for the caller: no other tenant to reach
          const stranger: Actor = await createActor(t, { scopes: call.scopes });
          return { key: stranger.key, target: adminId, actor: stranger.principalId };
        },
      },
    ];

    for (const call of calls) {
      for (const caller of callers) {
        it(`${call.name} refuses ${caller.name}, audits it and creates nothing`, async () => {
          const setup = await caller.setup(call);
          if (!setup) return expect(call.selfOnly || call.personsOnly).toBe(true);
          const before = await call.count(setup.target);
          const denied = await prisma().auditEvent.count({ where: { actorId: setup.actor, outcome: "denied" } });
          const error = await failure(call.call((key) => t.transport("connect", key), setup.key, setup.target));
          expect(error?.code).toBe(Code.PermissionDenied);
          expect(["SCOPE_ESCALATION", "PRINCIPAL_NOT_ACCESSIBLE", "PERSONS_ONLY"]).toContain(reasonOf(error));
          expect(await call.count(setup.target)).toBe(before);
          expect(await prisma().auditEvent.count({ where: { actorId: setup.actor, outcome: "denied" } })).toBe(
            denied + 1,
          );
        });
      }
    }

    it("agents are refused the person-only credentials outright", async () => {
      const { agent } = await t
        .client(AgentService)
        .registerAgent({ displayName: "not a person", scopes: ["token.user.create", "agent.read"] });
      const key = (await t.client(ApiKeyService).createApiKey({ principalId: agent?.id ?? "" })).secret;
      const minted = await failure(
        t.client(TokenService, { key }).mintUserApiToken({ scopes: ["agent.read"], label: "x" }),
      );
      expect(reasonOf(minted)).toBe("PERSONS_ONLY");
    });
  });

  describe("matrix: the HTTP routes that issue credentials", () => {
    const form = (path: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
      fetch(`${t.broker.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
        body: new URLSearchParams(body),
      });
    const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;
    const mintsDenied = () => prisma().auditEvent.count({ where: { action: "token.mint", outcome: "denied" } });

    it("/oauth/token gives a user API token no scope beyond its own, and audits the attempt", async () => {
      const narrow = await userToken(["agent.read"]);
      const before = await mintsDenied();
      const wider = await form(
        "/oauth/token",
        { grant_type: "client_credentials", scope: "agent.read tenant.create" },
        { authorization: basic(adminId, narrow) },
      );
      expect(wider.status).toBe(400);
      expect(((await wider.json()) as { error: string }).error).toBe("invalid_scope");
      expect(await mintsDenied()).toBe(before + 1);
      // What it holds it gets, and no more.
      const same = await form(
        "/oauth/token",
        { grant_type: "client_credentials", scope: "agent.read" },
        { authorization: basic(adminId, narrow) },
      );
      expect(((await same.json()) as { scope: string }).scope).toBe("agent.read");
    });

    it("/oauth/token refuses a broker token as a client secret: a token never mints a token", async () => {
      const narrow = await brokerToken(t.adminKey, ["agent.read"]);
      const before = await mintsDenied();
      const response = await form(
        "/oauth/token",
        { grant_type: "client_credentials" },
        { authorization: basic(adminId, narrow) },
      );
      expect(response.status).toBe(401);
      expect(await mintsDenied()).toBe(before + 1);
    });

    it("/device/decide approves nothing for a narrowed credential (it takes a signed-in session only)", async () => {
      const started = await t
        .client(DeviceAuthService, { key: undefined })
        .beginDeviceAuthorization({ clientId: "aegis-cli", scopes: ["agent.read"] });
      const narrow = await userToken(["agent.read"]);
      const response = await form(
        "/device/decide",
        { user_code: started.userCode, decision: "approve", csrf: "x" },
        { authorization: `Bearer ${narrow}` },
      );
      expect(response.status).toBe(401);
      const row = await prisma().deviceAuthorization.findFirstOrThrow({
        where: { userCode: started.userCode.replace("-", "") },
      });
      expect(row.status).toBe("pending");
    });
  });

  it("the admin's full key still issues every credential (the rule refuses only narrowed ones)", async () => {
    const { jwkJson } = await signingJwk();
    await t.client(AgentService).addAgentKey({ agentId: adminId, use: KeyUse.SIGNING, jwkJson });
    await t.client(ApiKeyService).createApiKey({ principalId: adminId, label: "second" });
    await t.client(TokenService).mintUserApiToken({ scopes: ["agent.read"], label: "fine" });
    const { tenant } = await t.client(TenantService).createTenant({ name: `t-${randomUUID().slice(0, 8)}` });
    expect(tenant?.id).toMatch(/^ten_/);
  });
});
