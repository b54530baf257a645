import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TenantService } from "../../gen/proto/aegis/tenant/v1/tenant_pb.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { failure, fieldViolationsOf, reasonOf } from "../support/errors.js";
import { createActor } from "../support/fixtures.js";

describe.each(databaseKinds)("TenantService on %s", (kind) => {
  let t: TestBroker;
  beforeAll(async () => {
    t = await startTestBroker(kind);
  });
  afterAll(() => t.stop());

  it("creates, gets and lists tenants over gRPC", async () => {
    const tenants = t.client(TenantService, { protocol: "grpc" });
    const { tenant } = await tenants.createTenant({ name: "acme-corp", displayName: "Acme Corp" });
    expect(tenant?.id).toMatch(/^ten_[a-z2-7]{20}$/);
    expect((await tenants.getTenant({ tenantId: tenant?.id ?? "" })).tenant).toEqual(tenant);
    const names = (await tenants.listTenants({})).tenants.map((x) => x.name);
    expect(names).toContain("acme-corp");
    expect(names).toContain("operators");
  });

  it("pages through tenants without repeats or gaps", async () => {
    const tenants = t.client(TenantService);
    for (let i = 0; i < 5; i++) await tenants.createTenant({ name: `page-${i}` });
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await tenants.listTenants({ pageSize: 2, pageToken });
      expect(page.tenants.length).toBeLessThanOrEqual(2);
      seen.push(...page.tenants.map((x) => x.id));
      pageToken = page.nextPageToken;
    } while (pageToken);
    const all = (await tenants.listTenants({ pageSize: 500 })).tenants.map((x) => x.id);
    expect(seen).toEqual(all);
  });

  it("names every invalid field", async () => {
    const error = await failure(
      t.client(TenantService).createTenant({ name: "Bad Name!", displayName: "x".repeat(201) }),
    );
    expect(error?.code).toBe(Code.InvalidArgument);
    expect(reasonOf(error)).toBe("INVALID_ARGUMENT");
    expect(fieldViolationsOf(error).map((v) => v.field)).toEqual(["name", "display_name"]);
  });

  it.each([
    ["page_size", { pageSize: 501 }],
    ["page_token", { pageToken: "not-a-token" }],
  ])("rejects a bad %s", async (field, request) => {
    const error = await failure(t.client(TenantService).listTenants(request));
    expect(error?.code).toBe(Code.InvalidArgument);
    expect(fieldViolationsOf(error)[0]?.field).toBe(field);
  });

  it("refuses a taken name with already_exists and leaves no success event", async () => {
    const tenants = t.client(TenantService);
    await tenants.createTenant({ name: "taken" });
    const error = await failure(tenants.createTenant({ name: "taken" }));
    expect(error?.code).toBe(Code.AlreadyExists);
    expect(reasonOf(error)).toBe("TENANT_NAME_TAKEN");
    const creations = await t.db.database.prisma.auditEvent.count({
      where: { action: "tenant.create", outcome: "success" },
    });
    const tenantsNow = await t.db.database.prisma.tenant.count({ where: { name: { not: "operators" } } });
    expect(creations).toBe(tenantsNow);
  });

  it("answers not_found for an unknown or malformed id", async () => {
    for (const tenantId of ["ten_aaaaaaaaaaaaaaaaaaaa", "'; drop table tenant; --", ""]) {
      expect((await failure(t.client(TenantService).getTenant({ tenantId })))?.code).toBe(Code.NotFound);
    }
  });

  it("refuses private RPCs to a tenant member, even one holding the action grant, and audits it", async () => {
    const member = await createActor(t, { scopes: ["tenant.create", "tenant.read", "tenant.list"] });
    const error = await failure(t.client(TenantService, { key: member.key }).createTenant({ name: "sneaky" }));
    expect(error?.code).toBe(Code.PermissionDenied);
    expect(reasonOf(error)).toBe("ELEVATED_GRANT_REQUIRED");
    expect(await t.db.database.prisma.tenant.findUnique({ where: { name: "sneaky" } })).toBeNull();
    const event = await t.db.database.prisma.auditEvent.findFirst({
      where: { actorId: member.principalId, outcome: "denied" },
    });
    expect(event).toMatchObject({ action: "tenant.create", target: "sneaky", tenantId: member.tenantId });
    expect(event?.reason).toMatch(/^ELEVATED_GRANT_REQUIRED/);
  });
});
