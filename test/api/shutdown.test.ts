// Graceful shutdown: calls already under way finish and are audited; the
// audit chain is whole afterwards.
import { Code, type ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { TenantService } from "../../gen/proto/aegis/tenant/v1/tenant_pb.js";
import { verifyAuditChain } from "../../src/audit/audit-queries.js";
import { RootKey } from "../../src/crypto/root-key.js";
import { startTestBroker } from "../support/broker.js";
import { createTestDatabase, databaseKinds } from "../support/databases.js";
import { createActor } from "../support/fixtures.js";

describe.each(databaseKinds)("shutdown on %s", (kind) => {
  it("finishes in-flight calls and writes their audit events before closing", async () => {
    const db = await createTestDatabase(kind);
    const t = await startTestBroker(kind, {}, db);
    const outsider = await createActor(t);
    const admin = t.client(TenantService, { protocol: "grpc" });
    const denied = t.client(PrincipalService, { protocol: "grpc", key: outsider.key });
    // Open both HTTP/2 sessions first, so the calls below go out at once.
    await admin.listTenants({});
    await denied.whoAmI({});

    const settled = Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        i % 2 ? admin.createTenant({ name: `inflight-${i}` }) : denied.listPrincipals({}),
      ),
    );
    // Close once the broker is demonstrably working on them.
    const prisma = db.database.prisma;
    await expect
      .poll(() => prisma.tenant.count({ where: { name: { startsWith: "inflight-" } } }), {
        interval: 2,
        timeout: 10_000,
      })
      .toBeGreaterThan(0);
    const closed = t.broker.close();
    const results = await settled;
    await closed;

    const created = results.filter((r, i) => i % 2 && r.status === "fulfilled").length;
    const deniedAnswers = results.filter(
      (r, i) => i % 2 === 0 && r.status === "rejected" && (r.reason as ConnectError).code === Code.PermissionDenied,
    ).length;
    expect([created, deniedAnswers]).toEqual([10, 10]);
    expect(await prisma.tenant.count({ where: { name: { startsWith: "inflight-" } } })).toBe(created);
    expect(await prisma.auditEvent.count({ where: { action: "tenant.create", outcome: "success" } })).toBe(created);
    expect(await prisma.auditEvent.count({ where: { actorId: outsider.principalId, outcome: "denied" } })).toBe(10);
    const rootKey = new RootKey(Buffer.from(t.config.rootKey ?? "", "base64url"));
    expect((await verifyAuditChain({ prisma, rootKey })).intact).toBe(true);
    await db.drop();
  });
});
