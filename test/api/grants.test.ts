// GrantService and user API tokens: nobody grants themselves anything or
// beyond their own grants; user API tokens carry exact, held scopes only;
// every escalation attempt is refused and audited with what was asked and
// what was held.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentService } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { ApiKeyService } from "../../gen/proto/aegis/apikey/v1/apikey_pb.js";
import { GrantService } from "../../gen/proto/aegis/grant/v1/grant_pb.js";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { failure, reasonOf } from "../support/errors.js";
import { type Actor, createActor } from "../support/fixtures.js";

const exact = "credential.lease.redeem:provider:gcp:app:billing:account:deploy";

describe.each(databaseKinds)("grants and user API tokens on %s", (kind) => {
  let t: TestBroker;
  let lead: Actor;
  let member: Actor;

  beforeAll(async () => {
    t = await startTestBroker(kind);
    lead = await createActor(t, {
      scopes: [
        "grant.create",
        "grant.delete",
        "grant.list",
        "agent.register",
        "apikey.create",
        "apikey.list",
        "apikey.revoke",
        "token.user.create",
        "credential.lease.redeem:provider:gcp:app:billing:account:*",
      ],
    });
    member = await createActor(t, {
      tenantId: lead.tenantId,
      scopes: ["grant.create", "grant.delete", "token.user.create"],
    });
  });
  afterAll(() => t.stop());

  const grants = (key = lead.key) => t.client(GrantService, { key });
  const deniedEvent = (action: string, actorId: string) =>
    t.db.database.prisma.auditEvent.findFirst({
      where: { action, actorId, outcome: "denied" },
      orderBy: { seq: "desc" },
    });

  it("gives, lists and takes away scopes, in canonical form, within what the giver holds", async () => {
    const { grant } = await grants().createGrant({
      principalId: member.principalId,
      scope: "credential.lease.redeem:provider:gcp:app:billing",
    });
    expect(grant?.scope).toBe("credential.lease.redeem:provider:gcp:app:billing:account:*");
    // Same scope again: the same grant.
    const again = await grants().createGrant({ principalId: member.principalId, scope: grant?.scope ?? "" });
    expect(again.grant?.id).toBe(grant?.id);
    const listed = await grants().listGrants({ principalId: member.principalId });
    expect(listed.grants.map((g) => g.scope)).toContain(grant?.scope);

    // The member's live credential sees the new grant at once, and loses it at once.
    const whoAmI = () => t.client(PrincipalService, { key: member.key }).whoAmI({});
    expect((await whoAmI()).scopes).toContain(grant?.scope);
    await grants().deleteGrant({ grantId: grant?.id ?? "" });
    expect((await whoAmI()).scopes).not.toContain(grant?.scope);
  });

  it.each([
    ["to oneself", () => lead.principalId, exact, "SELF_GRANT", Code.PermissionDenied],
    [
      "a wider selector than held",
      () => member.principalId,
      "credential.lease.redeem:provider:gcp",
      "SCOPE_ESCALATION",
      Code.PermissionDenied,
    ],
    [
      "another action",
      () => member.principalId,
      "credential.lease.create:provider:gcp:app:billing:account:x",
      "SCOPE_ESCALATION",
      Code.PermissionDenied,
    ],
    ["an action not held", () => member.principalId, "tenant.create", "SCOPE_ESCALATION", Code.PermissionDenied],
    ["the elevated grant", () => member.principalId, "broker.admin", "SCOPE_ESCALATION", Code.PermissionDenied],
    [
      "an action-only target scope",
      () => member.principalId,
      "credential.lease.redeem",
      "INVALID_ARGUMENT",
      Code.InvalidArgument,
    ],
    [
      "a malformed scope",
      () => member.principalId,
      "credential.lease.redeem:app:x",
      "INVALID_ARGUMENT",
      Code.InvalidArgument,
    ],
    ["to another tenant's principal", () => "prn_aaaaaaaaaaaaaaaaaaaa", exact, "PRINCIPAL_NOT_FOUND", Code.NotFound],
  ])("refuses giving %s", async (_, principalId, scope, reason, code) => {
    const error = await failure(grants().createGrant({ principalId: principalId(), scope }));
    expect(error?.code).toBe(code);
    expect(reasonOf(error)).toBe(reason);
  });

  it("never lets a member take away, or give, what it does not cover", async () => {
    const other = await createActor(t, { tenantId: lead.tenantId });
    const { grant } = await grants().createGrant({ principalId: other.principalId, scope: exact });
    const error = await failure(grants(member.key).deleteGrant({ grantId: grant?.id ?? "" }));
    expect(error?.code).toBe(Code.PermissionDenied);
    expect((await deniedEvent("grant.delete", member.principalId))?.reason).toMatch(
      /^SCOPE_ESCALATION: asked credential.lease.redeem:provider:gcp:app:billing:account:deploy; not held/,
    );
    const give = await failure(grants(member.key).createGrant({ principalId: lead.principalId, scope: exact }));
    expect(reasonOf(give)).toBe("SCOPE_ESCALATION");
    const denied = await deniedEvent("grant.create", member.principalId);
    expect(denied?.reason).toMatch(/^SCOPE_ESCALATION: asked \S+; not held \S+; held .*grant\.create/);
  });

  it("mints a user API token with exact held scopes; it authenticates, mints broker tokens, and never outgrows its owner", async () => {
    const minted = await t.client(TokenService, { key: lead.key }).mintUserApiToken({
      scopes: [exact, "grant.list"],
      label: "nightly job",
    });
    expect(minted.secret).toMatch(/^aegis_ut_/);
    expect(minted.scopes).toEqual([exact, "grant.list"]);
    const days = (Number(minted.expireTime?.seconds) * 1000 - Date.now()) / 86_400_000;
    expect(Math.round(days)).toBe(90);
    const stored = await t.db.database.prisma.apiKey.findUniqueOrThrow({ where: { id: minted.tokenId } });
    expect(stored.secretHash).not.toContain(minted.secret.slice(26));

    const asToken = t.client(PrincipalService, { key: minted.secret });
    expect((await asToken.whoAmI({})).scopes.sort()).toEqual(["grant.list", exact].sort());
    // It is limited to its scopes, not its owner's.
    const notInToken = await failure(
      t.client(AgentService, { key: minted.secret }).registerAgent({ displayName: "x", scopes: [] }),
    );
    expect(notInToken?.code).toBe(Code.PermissionDenied);
    const broker = await t
      .client(TokenService, { key: minted.secret })
      .mintToken({ audience: t.broker.url, scopes: [exact] });
    expect(broker.scope).toBe(exact);
    // Listed and revoked like an API key.
    const keys = await t.client(ApiKeyService, { key: lead.key }).listApiKeys({ principalId: lead.principalId });
    expect(keys.keys.find((k) => k.id === minted.tokenId)?.prefix).toMatch(/^aegis_ut_/);
    await t.client(ApiKeyService, { key: lead.key }).revokeApiKey({ keyId: minted.tokenId });
    expect((await failure(asToken.whoAmI({})))?.code).toBe(Code.Unauthenticated);
  });

  it.each([
    ["a wildcard", ["credential.lease.redeem:provider:gcp:app:billing:account:*"], "SCOPE_NOT_SPECIFIC"],
    ["a scope not held", ["credential.lease.redeem:provider:gcp:app:payroll:account:deploy"], "SCOPE_ESCALATION"],
    ["an action-only lease scope", ["credential.lease.redeem"], "SCOPE_NOT_SPECIFIC"],
    ["an action not held", ["tenant.create"], "SCOPE_ESCALATION"],
  ])("refuses a user API token with %s, and audits who asked what while holding what", async (_, scopes, reason) => {
    const error = await failure(t.client(TokenService, { key: lead.key }).mintUserApiToken({ scopes }));
    expect(error?.code).toBe(Code.PermissionDenied);
    expect(reasonOf(error)).toBe(reason);
    const event = await deniedEvent("token.user.create", lead.principalId);
    expect(event?.reason).toContain(`asked ${scopes[0]}`);
    expect(event?.reason).toContain("held ");
    expect(event?.reason).toContain("credential.lease.redeem:provider:gcp:app:billing:account:*");
  });

  it("lets only people mint user API tokens", async () => {
    const agents = t.client(AgentService, { key: lead.key });
    const { agent } = await agents.registerAgent({ displayName: "bot", scopes: [exact] });
    const key = (
      await t.client(ApiKeyService, { key: lead.key }).createApiKey({ principalId: agent?.id ?? "", label: "x" })
    ).secret;
    await grants().createGrant({ principalId: agent?.id ?? "", scope: "token.user.create" });
    const error = await failure(t.client(TokenService, { key }).mintUserApiToken({ scopes: [exact] }));
    expect(error?.code).toBe(Code.PermissionDenied);
    expect(reasonOf(error)).toBe("PERSONS_ONLY");
  });
});
