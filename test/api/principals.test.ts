// PrincipalService and the lifecycle every principal shares: a caller reads
// and lists only its own tenant's principals, and changes a principal's
// status only with a credential that covers every grant of it.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentService } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { PrincipalKind, PrincipalService, PrincipalStatus } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { failure, reasonOf } from "../support/errors.js";
import { type Actor, createActor } from "../support/fixtures.js";

describe.each(databaseKinds)("PrincipalService on %s", (kind) => {
  let t: TestBroker;
  let alice: Actor;
  let bob: Actor;
  let mallory: Actor;
  beforeAll(async () => {
    t = await startTestBroker(kind);
    alice = await createActor(t, { scopes: ["principal.read", "principal.list"], name: "Alice" });
    bob = await createActor(t, { tenantId: alice.tenantId, kind: "agent", name: "Bob's agent" });
    mallory = await createActor(t, { scopes: ["principal.read", "principal.list"], name: "Mallory" });
  });
  afterAll(() => t.stop());

  it("tells a caller who it is, with its scopes, without any grant", async () => {
    const me = await t.client(PrincipalService, { key: bob.key, protocol: "grpc-web" }).whoAmI({});
    expect(me.principal).toMatchObject({ id: bob.principalId, tenantId: alice.tenantId, kind: PrincipalKind.AGENT });
    expect(me.scopes).toEqual([]);
  });

  it("gets and lists principals of the caller's own tenant", async () => {
    const client = t.client(PrincipalService, { key: alice.key });
    expect((await client.getPrincipal({ principalId: bob.principalId })).principal?.displayName).toBe("Bob's agent");
    const listed = await client.listPrincipals({});
    expect(listed.principals.map((p) => p.id).sort()).toEqual([alice.principalId, bob.principalId].sort());
    const agents = await client.listPrincipals({ kind: PrincipalKind.AGENT, status: PrincipalStatus.ACTIVE });
    expect(agents.principals.map((p) => p.id)).toEqual([bob.principalId]);
  });

  it("reports a principal of another tenant as not found and never lists it", async () => {
    const client = t.client(PrincipalService, { key: mallory.key });
    await expect(client.getPrincipal({ principalId: alice.principalId })).rejects.toMatchObject({
      code: Code.NotFound,
    });
    const listed = await client.listPrincipals({ pageSize: 500 });
    expect(listed.principals.map((p) => p.id)).toEqual([mallory.principalId]);
  });

  it("refuses listing without the grant and audits the denial", async () => {
    const error = await failure(t.client(PrincipalService, { key: bob.key }).listPrincipals({}));
    expect(error?.code).toBe(Code.PermissionDenied);
    const denied = await t.db.database.prisma.auditEvent.count({
      where: { actorId: bob.principalId, action: "principal.list", outcome: "denied" },
    });
    expect(denied).toBe(1);
  });

  it("changes an agent's status only for a credential that covers every grant of the agent", async () => {
    const actions = ["agent.suspend", "agent.reactivate", "agent.revoke", "agent.delete", "agent.read"];
    const narrow = await createActor(t, { scopes: actions, name: "helpdesk" });
    const covering = await createActor(t, { tenantId: narrow.tenantId, scopes: [...actions, "reports.read"] });
    const agent = await createActor(t, { tenantId: narrow.tenantId, kind: "agent", scopes: ["reports.read"] });
    const agentId = agent.principalId;
    const steps = [
      ["suspendAgent", "suspended"],
      ["reactivateAgent", "active"],
      ["revokeAgent", "revoked"],
    ] as const;
    for (const [change, after] of steps) {
      const refused = await failure(t.client(AgentService, { key: narrow.key })[change]({ agentId }));
      expect([change, refused?.code, reasonOf(refused)]).toEqual([change, Code.PermissionDenied, "SCOPE_ESCALATION"]);
      await t.client(AgentService, { key: covering.key })[change]({ agentId });
      const row = await t.db.database.prisma.principal.findUniqueOrThrow({ where: { id: agentId } });
      expect(row.status).toBe(after);
    }
    const deleted = await failure(t.client(AgentService, { key: narrow.key }).deleteAgent({ agentId }));
    expect(reasonOf(deleted)).toBe("SCOPE_ESCALATION");
    await t.client(AgentService, { key: covering.key }).deleteAgent({ agentId });
    expect(await t.db.database.prisma.principal.count({ where: { id: agentId } })).toBe(0);
  });
});
