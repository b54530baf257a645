import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditService, Outcome } from "../../gen/proto/aegis/audit/v1/audit_pb.js";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { TenantService } from "../../gen/proto/aegis/tenant/v1/tenant_pb.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { type Actor, createActor } from "../support/fixtures.js";

describe.each(databaseKinds)("AuditService on %s", (kind) => {
  let t: TestBroker;
  let auditor: Actor;
  beforeAll(async () => {
    t = await startTestBroker(kind);
    auditor = await createActor(t, { scopes: ["audit.read"] });
  });
  afterAll(() => t.stop());

  const verify = () => t.client(AuditService).verifyAuditChain({});

  it("records a mutation with actor, tenant, action, target and request id", async () => {
    let requestId = "";
    const { tenant } = await t
      .client(TenantService)
      .createTenant({ name: "audited" }, { onHeader: (h) => (requestId = h.get("aegis-request-id") ?? "") });
    const { events } = await t.client(AuditService).queryAuditEvents({ filter: { action: "tenant.create" } });
    const event = events.find((e) => e.target === tenant?.id);
    expect(event).toMatchObject({
      requestId,
      tenantId: t.broker.bootstrap?.tenantId,
      actorId: t.broker.bootstrap?.principalId,
      outcome: Outcome.SUCCESS,
    });
    expect(event?.client).toMatch(/^127\.0\.0\.1/);
  });

  it("keeps a tenant member to its own tenant's events", async () => {
    await t
      .client(PrincipalService, { key: auditor.key })
      .getPrincipal({ principalId: "prn_aaaaaaaaaaaaaaaaaaaa" })
      .catch(() => {});
    const client = t.client(AuditService, { key: auditor.key });
    const { events } = await client.queryAuditEvents({ pageSize: 1000 });
    expect(events.length).toBeGreaterThan(0);
    expect(new Set(events.map((e) => e.tenantId))).toEqual(new Set([auditor.tenantId]));
    await expect(
      client.queryAuditEvents({ filter: { tenantId: t.broker.bootstrap?.tenantId ?? "" } }),
    ).rejects.toMatchObject({ code: Code.NotFound });
    await expect(client.verifyAuditChain({})).rejects.toMatchObject({ code: Code.PermissionDenied });
  });

  it("streams new events to a tail, replaying from after_seq", async () => {
    const abort = new AbortController();
    const { events } = await t.client(AuditService).queryAuditEvents({ pageSize: 1000 });
    const lastSeq = events.at(-1)?.seq ?? 0n;
    const stored = (await t.client(TenantService).createTenant({ name: "replayed" })).tenant?.id;
    const stream = t
      .client(AuditService, { protocol: "grpc" })
      .tailAuditEvents({ afterSeq: lastSeq, filter: { action: "tenant.create" } }, { signal: abort.signal })
      [Symbol.asyncIterator]();
    // Written before the tail began: replayed.
    const replayed = (await stream.next()).value;
    expect(replayed?.event?.target).toBe(stored);
    expect(replayed?.event?.seq).toBeGreaterThan(lastSeq);
    // Written once the tail has answered, so while it is open on the broker: streamed.
    const created = (await t.client(TenantService).createTenant({ name: "tailed" })).tenant?.id;
    const streamed = (await stream.next()).value;
    expect(streamed?.event?.target).toBe(created);
    expect(streamed?.event?.seq).toBeGreaterThan(replayed?.event?.seq ?? 0n);
    abort.abort();
  });

  it("ends a tail on the server when its HTTP/1.1 client goes away", async () => {
    const abort = new AbortController();
    const { events } = await t.client(AuditService).queryAuditEvents({ pageSize: 1000 });
    let requestId = "";
    const stream = t
      .client(AuditService, { protocol: "connect" })
      .tailAuditEvents(
        { afterSeq: (events.at(-1)?.seq ?? 1n) - 1n },
        { signal: abort.signal, onHeader: (h) => (requestId = h.get("aegis-request-id") ?? "") },
      );
    // The last stored event comes back: the tail is open on the broker, waiting for more.
    expect((await stream[Symbol.asyncIterator]().next()).done).toBe(false);
    expect(requestId).toMatch(/^req_/);
    abort.abort();
    // The call's log line is written when the server side of the stream ends.
    const ended = () =>
      t.logs.some((line) => line.includes(requestId) && line.includes("AuditService/TailAuditEvents"));
    await expect
      .poll(ended, { timeout: 5_000, interval: 20, message: "the tail did not end after its client left" })
      .toBe(true);
  });

  it("verifies an intact chain, then detects a modified event and a deleted one", async () => {
    const prisma = t.db.database.prisma;
    expect(await verify()).toMatchObject({ intact: true, firstBadSeq: 0n });

    const victim = await prisma.auditEvent.findFirstOrThrow({ where: { action: "tenant.create" } });
    await prisma.auditEvent.update({ where: { seq: victim.seq }, data: { actorId: "prn_somebodyelse" } });
    const modified = await verify();
    expect(modified).toMatchObject({ intact: false, firstBadSeq: victim.seq });
    expect(modified.problem).toMatch(/modified/);
    await prisma.auditEvent.update({ where: { seq: victim.seq }, data: { actorId: victim.actorId } });
    expect((await verify()).intact).toBe(true);

    const middle = await prisma.auditEvent.findFirstOrThrow({ where: { seq: 2n } });
    await prisma.auditEvent.delete({ where: { seq: 2n } });
    expect(await verify()).toMatchObject({ intact: false, firstBadSeq: 2n });
    await prisma.auditEvent.create({ data: middle });

    const head = await prisma.auditChainHead.findUniqueOrThrow({ where: { id: 1 } });
    const last = await prisma.auditEvent.findUniqueOrThrow({ where: { seq: head.seq } });
    await prisma.auditEvent.delete({ where: { seq: head.seq } });
    const truncated = await verify();
    expect(truncated).toMatchObject({ intact: false, firstBadSeq: head.seq });
    expect(truncated.problem).toMatch(/removed/);
    await prisma.auditEvent.create({ data: last });
  });

  it("keeps credentials out of audit events and logs", async () => {
    const victim = await createActor(t);
    await t
      .client(TenantService, { key: victim.key })
      .createTenant({ name: "nope" })
      .catch(() => {});
    await fetch(`${t.broker.url}/aegis.principal.v1.PrincipalService/WhoAmI`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${victim.key}x` },
      body: "{}",
    });
    const secretPart = victim.key.slice(-49);
    const events = await t.db.database.prisma.auditEvent.findMany();
    expect(JSON.stringify(events, (_, v) => (typeof v === "bigint" ? String(v) : v))).not.toContain(secretPart);
    expect(t.logs.join("\n")).not.toContain(secretPart);
    expect(t.logs.join("\n")).not.toContain(t.adminKey.slice(-49));
    expect(t.logs.join("\n")).not.toContain(t.config.rootKey);
  });
});
