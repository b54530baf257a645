// Resource servers end to end, through the public API only: a tenant
// registers its APIs with their own scopes; only the admin right over a
// server gives its scopes; tokens for it carry them under its policy; the
// server introspects its own tokens; and every refusal says which check
// refused (the reason), not only the code.
import { Code } from "@connectrpc/connect";
import * as oauth from "oauth4webapi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentService } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { ApiKeyService } from "../../gen/proto/aegis/apikey/v1/apikey_pb.js";
import { DeviceAuthService } from "../../gen/proto/aegis/device/v1/device_pb.js";
import { GrantService } from "../../gen/proto/aegis/grant/v1/grant_pb.js";
import { PrincipalKind, PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { ResourceServerService } from "../../gen/proto/aegis/resourceserver/v1/resource_server_pb.js";
import { TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import { verifyAccessToken } from "../../src/sdk/index.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { createDpopKey } from "../support/dpop.js";
import { failure, reasonOf } from "../support/errors.js";
import { type Actor, createActor, registerApi, seconds } from "../support/fixtures.js";

describe.each(databaseKinds)("resource servers on %s", (kind) => {
  let t: TestBroker;
  let admin: Actor;
  let agentId: string;
  let agentKey: string;
  let n = 0;
  const unique = (name: string) => `https://${name}-${++n}.example.com`;
  const servers = (key = admin.key) => t.client(ResourceServerService, { key });
  const grants = (key = admin.key) => t.client(GrantService, { key });
  const mint = (key: string, audience: string, scopes: string[], headers?: Record<string, string>) =>
    t.client(TokenService, { key }).mintToken({ audience, scopes }, headers ? { headers } : {});

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
        "apikey.create",
        "principal.read",
      ],
    });
    const agents = t.client(AgentService, { key: admin.key });
    agentId = (await agents.registerAgent({ displayName: "report bot" })).agent?.id ?? "";
    agentKey = (await t.client(ApiKeyService, { key: admin.key }).createApiKey({ principalId: agentId })).secret;
  });
  afterAll(() => t.stop());

  describe("the catalogue", () => {
    it("registers an API with its scopes and gives its creator the admin right over it", async () => {
      const identifier = unique("payments");
      const { resourceServer } = await servers().createResourceServer({
        identifier,
        displayName: "Payments",
        scopes: [
          { name: "repo.read", description: "read repositories" },
          { name: "model:invoke", description: "a colon is part of the name" },
          { name: "sync:write", principalKinds: [PrincipalKind.AGENT] },
        ],
        maxTokenLifetime: seconds(600),
      });
      expect(resourceServer).toMatchObject({
        identifier,
        tenantId: admin.tenantId,
        defaultTokenLifetime: seconds(300),
        maxTokenLifetime: seconds(600),
        requireDpop: false,
        builtIn: false,
      });
      expect(resourceServer?.id).toMatch(/^rsv_/);
      expect(resourceServer?.scopes.map((s) => s.name)).toEqual(["model:invoke", "repo.read", "sync:write"]);
      expect(resourceServer?.scopes[2]?.principalKinds).toEqual([PrincipalKind.AGENT]);
      const held = await grants().listGrants({ principalId: admin.principalId });
      expect(held.grants.map((g) => g.scope)).toContain(`resource_server.admin:server:${resourceServer?.id}`);
      const own = await t
        .client(PrincipalService, { key: admin.key })
        .getPrincipal({ principalId: resourceServer?.principalId ?? "" });
      expect(own.principal?.kind).toBe(PrincipalKind.SERVICE);
      expect(
        await t.db.database.prisma.auditEvent.count({
          where: { action: "resource_server.create", target: { startsWith: resourceServer?.id ?? "?" } },
        }),
      ).toBe(1);
    });

    it("refuses bad catalogues, a taken identifier and the broker's own URL, naming the field", async () => {
      const cases: [string, Parameters<ReturnType<typeof servers>["createResourceServer"]>[0], string][] = [
        ["a scope with a space", { identifier: unique("a"), displayName: "A", scopes: [{ name: "a b" }] }, "scopes"],
        [
          "a scope twice",
          { identifier: unique("a"), displayName: "A", scopes: [{ name: "x" }, { name: "x" }] },
          "scopes",
        ],
        ["the broker's URL", { identifier: t.broker.url, displayName: "A" }, "identifier"],
        [
          "a default above the maximum",
          {
            identifier: unique("a"),
            displayName: "A",
            defaultTokenLifetime: seconds(700),
            maxTokenLifetime: seconds(600),
          },
          "default_token_lifetime",
        ],
        [
          "a maximum above the broker's",
          { identifier: unique("a"), displayName: "A", maxTokenLifetime: seconds(100_000) },
          "max_token_lifetime",
        ],
      ];
      for (const [what, request, field] of cases) {
        const error = await failure(servers().createResourceServer(request));
        expect(error?.code, what).toBe(Code.InvalidArgument);
        expect(error?.rawMessage, what).toContain(field);
      }
      const identifier = unique("taken");
      await servers().createResourceServer({ identifier, displayName: "Taken" });
      const other = await createActor(t, { scopes: ["resource_server.create"] });
      const taken = await failure(servers(other.key).createResourceServer({ identifier, displayName: "Mine" }));
      expect(taken?.code).toBe(Code.AlreadyExists);
      expect(reasonOf(taken)).toBe("RESOURCE_SERVER_EXISTS");
    });

    it("describes the broker itself as the built-in server whose scopes are its actions", async () => {
      const { resourceServer } = await servers().getResourceServer({ resourceServerId: "broker" });
      expect(resourceServer).toMatchObject({ id: "broker", identifier: t.broker.url, builtIn: true });
      const names = resourceServer?.scopes.map((s) => s.name) ?? [];
      expect(names).toEqual(expect.arrayContaining(["token.user.create", "resource_server.admin", "introspect.token"]));
      expect(resourceServer?.scopes.find((s) => s.name === "credential.lease.redeem")?.description).toContain(
        "provider:<value>",
      );
    });

    it("pages through a tenant's servers and shows none of another tenant's", async () => {
      const lister = await createActor(t, { scopes: ["resource_server.create", "resource_server.read"] });
      for (const name of ["p1", "p2", "p3"]) {
        await servers(lister.key).createResourceServer({ identifier: unique(name), displayName: name });
      }
      const first = await servers(lister.key).listResourceServers({ pageSize: 2 });
      expect(first.resourceServers).toHaveLength(2);
      const second = await servers(lister.key).listResourceServers({ pageSize: 2, pageToken: first.nextPageToken });
      expect(second.resourceServers.map((s) => s.displayName)).toHaveLength(1);
      expect(second.nextPageToken).toBe("");
      const mine = first.resourceServers[0]?.id ?? "";
      const missing = await failure(servers().getResourceServer({ resourceServerId: mine }));
      expect(reasonOf(missing)).toBe("RESOURCE_SERVER_NOT_FOUND");
    });

    it("deprecates a scope without breaking tokens in flight, and restores it", async () => {
      const api = await registerApi(t, admin.key, {
        identifier: unique("deprecate"),
        scopes: ["old.read", "new.read"],
        grants: { [agentId]: ["old.read"] },
      });
      const inFlight = await mint(agentKey, api.identifier, ["old.read"]);
      const updated = await servers().updateResourceServer({
        resourceServerId: api.id,
        deprecateScopes: ["old.read"],
        addScopes: [{ name: "newest.read", description: "added later" }],
        displayName: "Renamed",
      });
      expect(updated.resourceServer?.displayName).toBe("Renamed");
      expect(updated.resourceServer?.scopes.find((s) => s.name === "old.read")?.deprecated).toBe(true);
      expect(updated.resourceServer?.scopes.map((s) => s.name)).toContain("newest.read");
      const refused = await failure(mint(agentKey, api.identifier, ["old.read"]));
      expect(reasonOf(refused)).toBe("INVALID_SCOPE");
      const regrant = await failure(
        grants().createGrant({ principalId: agentId, scope: "old.read", resourceServerId: api.id }),
      );
      expect(reasonOf(regrant)).toBe("SCOPE_DEPRECATED");
      const seen = await t.client(TokenService, { key: t.adminKey }).introspectToken({ token: inFlight.accessToken });
      expect(seen.active).toBe(true);
      await servers().updateResourceServer({ resourceServerId: api.id, restoreScopes: ["old.read"] });
      expect((await mint(agentKey, api.identifier, ["old.read"])).scope).toBe("old.read");
      const unknown = await failure(
        servers().updateResourceServer({ resourceServerId: api.id, deprecateScopes: ["nope"] }),
      );
      expect(unknown?.code).toBe(Code.InvalidArgument);
    });

    it("refuses to delete a server whose scopes are held unless forced, then voids their tokens", async () => {
      const api = await registerApi(t, admin.key, {
        identifier: unique("doomed"),
        scopes: ["x.read"],
        grants: { [agentId]: ["x.read"] },
      });
      const token = await mint(agentKey, api.identifier, ["x.read"]);
      const refused = await failure(servers().deleteResourceServer({ resourceServerId: api.id }));
      expect(refused?.code).toBe(Code.FailedPrecondition);
      expect(reasonOf(refused)).toBe("RESOURCE_SERVER_IN_USE");
      t.clock.advance(1000);
      await servers().deleteResourceServer({ resourceServerId: api.id, force: true });
      const seen = await t.client(TokenService, { key: t.adminKey }).introspectToken({ token: token.accessToken });
      expect(seen.active).toBe(false);
      t.clock.advance(1000);
      expect(reasonOf(await failure(mint(agentKey, api.identifier, ["x.read"])))).toBe("INVALID_TARGET");
      expect(await t.db.database.prisma.principal.count({ where: { id: api.principalId } })).toBe(0);
    });
  });

  describe("who gives a server's scopes", () => {
    it("is the holder of its admin right only; not the caller itself, not a peer, not another tenant", async () => {
      const api = await registerApi(t, admin.key, { identifier: unique("gated"), scopes: ["repo.read"] });
      const give = (key: string, principalId: string) =>
        grants(key).createGrant({ principalId, scope: "repo.read", resourceServerId: api.id });
      const peer = await createActor(t, { tenantId: admin.tenantId, scopes: ["grant.create"] });
      const stranger = await createActor(t, { scopes: ["grant.create", "resource_server.admin:server:*"] });
      const refusals: [string, () => Promise<unknown>, string][] = [
        ["a peer with grant.create only", () => give(peer.key, agentId), "NOT_RESOURCE_SERVER_ADMIN"],
        ["the admin to itself", () => give(admin.key, admin.principalId), "SELF_GRANT"],
        ["another tenant's admin of every server", () => give(stranger.key, agentId), "PRINCIPAL_NOT_FOUND"],
        [
          "a scope not in the catalogue",
          () => grants().createGrant({ principalId: agentId, scope: "repo.write", resourceServerId: api.id }),
          "INVALID_SCOPE",
        ],
      ];
      for (const [what, call, reason] of refusals) {
        expect(reasonOf(await failure(call())), what).toBe(reason);
      }
      expect(await t.db.database.prisma.resourceGrant.count({ where: { resourceServerId: api.id } })).toBe(0);
      const denied = await t.db.database.prisma.auditEvent.count({
        where: { action: "grant.create", outcome: "denied", actorId: peer.principalId },
      });
      expect(denied).toBe(1);
    });

    it("is handed on by giving the admin right, which its new holder uses but cannot turn on itself", async () => {
      const api = await registerApi(t, admin.key, { identifier: unique("delegated"), scopes: ["repo.read"] });
      const deputy = await createActor(t, { tenantId: admin.tenantId, scopes: ["grant.create"] });
      await grants().createGrant({ principalId: deputy.principalId, scope: `resource_server.admin:server:${api.id}` });
      const { grant } = await grants(deputy.key).createGrant({
        principalId: agentId,
        scope: "repo.read",
        resourceServerId: api.id,
      });
      expect(grant).toMatchObject({ resourceServerId: api.id, scope: "repo.read", grantedBy: deputy.principalId });
      const self = await failure(
        grants(deputy.key).createGrant({
          principalId: deputy.principalId,
          scope: "repo.read",
          resourceServerId: api.id,
        }),
      );
      expect(reasonOf(self)).toBe("SELF_GRANT");
    });

    it("keeps a scope for the kinds it names", async () => {
      const api = await registerApi(t, admin.key, { identifier: unique("kinds"), scopes: [] });
      await servers().updateResourceServer({
        resourceServerId: api.id,
        addScopes: [{ name: "sync:write", principalKinds: [PrincipalKind.AGENT] }],
      });
      const person = await createActor(t, { tenantId: admin.tenantId });
      const refused = await failure(
        grants().createGrant({ principalId: person.principalId, scope: "sync:write", resourceServerId: api.id }),
      );
      expect(reasonOf(refused)).toBe("SCOPE_NOT_FOR_KIND");
      await grants().createGrant({ principalId: agentId, scope: "sync:write", resourceServerId: api.id });
    });
  });

  describe("tokens for a server", () => {
    it("carry its identifier as aud, exactly its scopes, and its lifetimes; the broker never accepts them", async () => {
      const api = await registerApi(t, admin.key, {
        identifier: unique("tokens"),
        scopes: ["model:invoke", "sync:write", "other"],
        grants: { [agentId]: ["model:invoke", "sync:write"] },
        defaultTokenLifetimeSeconds: 120,
        maxTokenLifetimeSeconds: 600,
      });
      const minted = await mint(agentKey, api.identifier, ["model:invoke", "sync:write"]);
      expect(minted).toMatchObject({ tokenType: "Bearer", expiresIn: 120, scope: "model:invoke sync:write" });
      const claims = await verifyAccessToken(minted.accessToken, {
        issuer: t.broker.url,
        audience: api.identifier,
        jwksUri: `${t.broker.url}/.well-known/jwks.json`,
      });
      expect(claims).toMatchObject({ aud: api.identifier, sub: agentId, scope: "model:invoke sync:write" });
      const onBroker = await failure(t.client(PrincipalService, { key: minted.accessToken }).whoAmI({}));
      expect(onBroker?.code).toBe(Code.Unauthenticated);

      const refusals: [string, () => Promise<unknown>, Code, string][] = [
        ["an unknown audience", () => mint(agentKey, unique("nowhere"), []), Code.InvalidArgument, "INVALID_TARGET"],
        [
          "a scope not in its catalogue",
          () => mint(agentKey, api.identifier, ["model"]),
          Code.InvalidArgument,
          "INVALID_SCOPE",
        ],
        [
          "a scope not granted",
          () => mint(agentKey, api.identifier, ["other"]),
          Code.PermissionDenied,
          "SCOPE_NOT_GRANTED",
        ],
        [
          "a broker scope for it",
          () => mint(agentKey, api.identifier, ["agent.register"]),
          Code.InvalidArgument,
          "INVALID_SCOPE",
        ],
        [
          "a lifetime above its maximum",
          () =>
            t.client(TokenService, { key: agentKey }).mintToken({ audience: api.identifier, lifetime: seconds(601) }),
          Code.InvalidArgument,
          "INVALID_ARGUMENT",
        ],
      ];
      for (const [what, call, code, reason] of refusals) {
        const error = await failure(call());
        expect(error?.code, what).toBe(code);
        expect(reasonOf(error), what).toBe(reason);
      }
      const audited = await t.db.database.prisma.auditEvent.findFirst({
        where: {
          action: "token.mint",
          outcome: "denied",
          actorId: agentId,
          reason: { startsWith: "SCOPE_NOT_GRANTED" },
        },
      });
      expect(audited?.reason).toContain("not held other");
    });

    it("answers invalid_target and invalid_scope on the OAuth token endpoint, as RFC 8707 and 6749 say", async () => {
      const api = await registerApi(t, admin.key, { identifier: unique("oauth"), scopes: ["a.read"] });
      const as = { issuer: t.broker.url, token_endpoint: `${t.broker.url}/oauth/token` };
      const client = { client_id: agentId };
      const auth = oauth.ClientSecretPost(agentKey);
      const insecure = { [oauth.allowInsecureRequests]: true } as const;
      const request = (params: Record<string, string>) =>
        oauth.clientCredentialsGrantRequest(as, client, auth, new URLSearchParams(params), insecure);
      const target = await request({ resource: unique("nowhere") });
      expect(target.status).toBe(400);
      expect(await target.json()).toMatchObject({ error: "invalid_target" });
      const scope = await request({ resource: api.identifier, scope: "b.read" });
      expect(scope.status).toBe(400);
      expect(await scope.json()).toMatchObject({ error: "invalid_scope" });
    });

    it("are refused as Bearer tokens for a server that requires DPoP, and bound otherwise", async () => {
      const api = await registerApi(t, admin.key, {
        identifier: unique("dpop"),
        scopes: ["pay"],
        grants: { [agentId]: ["pay"] },
        requireDpop: true,
      });
      const bearer = await failure(mint(agentKey, api.identifier, ["pay"]));
      expect(bearer?.code).toBe(Code.FailedPrecondition);
      expect(reasonOf(bearer)).toBe("DPOP_REQUIRED");
      const key = await createDpopKey();
      const url = `${t.broker.url}/aegis.token.v1.TokenService/MintToken`;
      const bound = await mint(agentKey, api.identifier, ["pay"], {
        dpop: await key.proof({ method: "POST", url }),
      });
      expect(bound.tokenType).toBe("DPoP");
    });

    it("stop working when the grant behind them is taken away", async () => {
      const api = await registerApi(t, admin.key, {
        identifier: unique("revoke-grant"),
        scopes: ["r"],
        grants: { [agentId]: ["r"] },
      });
      const token = await mint(agentKey, api.identifier, ["r"]);
      const { grants: held } = await grants().listGrants({ principalId: agentId });
      const grant = held.find((g) => g.resourceServerId === api.id);
      t.clock.advance(1000);
      await grants().deleteGrant({ grantId: grant?.id ?? "" });
      const seen = await t.client(TokenService, { key: t.adminKey }).introspectToken({ token: token.accessToken });
      expect(seen.active).toBe(false);
      // A cutoff voids whole seconds: later tests mint in the next one.
      t.clock.advance(1000);
      expect(reasonOf(await failure(mint(agentKey, api.identifier, ["r"])))).toBe("SCOPE_NOT_GRANTED");
    });
  });

  describe("device logins for a server", () => {
    it("carry what the person holds there, approved, then refreshed, under its policy", async () => {
      const person = await createActor(t, { tenantId: admin.tenantId, scopes: ["oauth_client.create"] });
      const api = await registerApi(t, admin.key, {
        identifier: unique("device"),
        scopes: ["repo.read", "repo.write"],
        grants: { [person.principalId]: ["repo.read"] },
        defaultTokenLifetimeSeconds: 90,
      });
      const device = (key?: string) => t.client(DeviceAuthService, { key });
      const { client } = await device(person.key).createOAuthClient({
        name: "repo tool",
        allowedAudiences: [api.identifier],
      });
      const clientId = client?.id ?? "";
      const unknown = await failure(
        device().beginDeviceAuthorization({ clientId, scopes: ["nope"], audience: api.identifier }),
      );
      expect(reasonOf(unknown)).toBe("INVALID_SCOPE");
      const begun = await device().beginDeviceAuthorization({
        clientId,
        scopes: ["repo.read", "repo.write"],
        audience: api.identifier,
      });
      // The person holds repo.read only: approving repo.write too is refused.
      const wider = await failure(device(person.key).approveDeviceAuthorization({ userCode: begun.userCode }));
      expect(reasonOf(wider)).toBe("SCOPE_NOT_GRANTED");
      await device(person.key).approveDeviceAuthorization({ userCode: begun.userCode, scopes: ["repo.read"] });
      const { tokens } = await device().exchangeDeviceCode({ clientId, deviceCode: begun.deviceCode });
      expect(tokens).toMatchObject({ scope: "repo.read", expiresIn: 90 });
      const verify = (token: string) =>
        verifyAccessToken(token, {
          issuer: t.broker.url,
          audience: api.identifier,
          jwksUri: `${t.broker.url}/.well-known/jwks.json`,
        });
      expect(await verify(tokens?.accessToken ?? "")).toMatchObject({ sub: person.principalId, scope: "repo.read" });
      const refreshed = await device().refreshAccessToken({ clientId, refreshToken: tokens?.refreshToken ?? "" });
      expect(await verify(refreshed.tokens?.accessToken ?? "")).toMatchObject({
        aud: api.identifier,
        scope: "repo.read",
      });
    });
  });

  describe("the server itself", () => {
    it("introspects the tokens issued for it, and no others, without introspect.token", async () => {
      const mine = await registerApi(t, admin.key, {
        identifier: unique("introspecting"),
        scopes: ["s"],
        grants: { [agentId]: ["s"] },
      });
      const theirs = await registerApi(t, admin.key, {
        identifier: unique("other"),
        scopes: ["s"],
        grants: { [agentId]: ["s"] },
      });
      const { secret } = await t
        .client(ApiKeyService, { key: admin.key })
        .createApiKey({ principalId: mine.principalId, label: "introspection" });
      const introspect = (token: string) => t.client(TokenService, { key: secret }).introspectToken({ token });
      const forMine = await mint(agentKey, mine.identifier, ["s"]);
      expect(await introspect(forMine.accessToken)).toMatchObject({ active: true, aud: mine.identifier, scope: "s" });
      expect((await introspect((await mint(agentKey, theirs.identifier, ["s"])).accessToken)).active).toBe(false);
      expect((await introspect((await mint(agentKey, t.broker.url, [])).accessToken)).active).toBe(false);
      // Someone who is neither a holder of introspect.token nor a server is refused.
      const refused = await failure(
        t.client(TokenService, { key: agentKey }).introspectToken({ token: forMine.accessToken }),
      );
      expect(reasonOf(refused)).toBe("MISSING_GRANT");
    });

    it("gets credentials only from an administrator of it", async () => {
      const api = await registerApi(t, admin.key, { identifier: unique("keyed"), scopes: [] });
      const keyMaker = await createActor(t, { tenantId: admin.tenantId, scopes: ["apikey.create"] });
      const refused = await failure(
        t.client(ApiKeyService, { key: keyMaker.key }).createApiKey({ principalId: api.principalId }),
      );
      expect(reasonOf(refused)).toBe("SCOPE_ESCALATION");
    });

    it("has RFC 9728 metadata to serve at its own well-known URL", async () => {
      const api = await registerApi(t, admin.key, {
        identifier: unique("metadata"),
        scopes: ["a", "b"],
        requireDpop: true,
      });
      const response = await fetch(`${t.broker.url}/resource-servers/${api.id}/oauth-protected-resource`);
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({
        resource: api.identifier,
        authorization_servers: [t.broker.url],
        scopes_supported: ["a", "b"],
        dpop_bound_access_tokens_required: true,
      });
      expect((await fetch(`${t.broker.url}/resource-servers/rsv_nothing/oauth-protected-resource`)).status).toBe(404);
    });
  });

  describe("user API tokens for a server", () => {
    it("carry that server's scopes only, and mint only for it", async () => {
      const person = await createActor(t, { tenantId: admin.tenantId, scopes: ["token.user.create"] });
      const api = await registerApi(t, admin.key, {
        identifier: unique("user-token"),
        scopes: ["repo.read", "repo.write"],
        grants: { [person.principalId]: ["repo.read", "repo.write"] },
      });
      const minted = await t
        .client(TokenService, { key: person.key })
        .mintUserApiToken({ audience: api.identifier, scopes: ["repo.read"], label: "ci" });
      expect(minted.scopes).toEqual(["repo.read"]);
      expect((await mint(minted.secret, api.identifier, ["repo.read"])).scope).toBe("repo.read");
      expect(reasonOf(await failure(mint(minted.secret, api.identifier, ["repo.write"])))).toBe("SCOPE_NOT_GRANTED");
      expect((await t.client(PrincipalService, { key: minted.secret }).whoAmI({})).scopes).toEqual([]);
      const unheld = await failure(
        t.client(TokenService, { key: person.key }).mintUserApiToken({ audience: api.identifier, scopes: ["nope"] }),
      );
      expect(reasonOf(unheld)).toBe("INVALID_SCOPE");
    });
  });
});
