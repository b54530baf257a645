// Tenant domain functions: creation (audited), lookup and listing.
import type { Tenant } from "../../gen/prisma/client.js";
import type { AuditBase } from "../core/audit.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError, notFound } from "../core/errors/domain-error.js";
import { type Page, pageOf } from "../core/pagination.js";
import { isId, newId } from "../protocol/ids.js";

// The name's form and the display name's length are request rules
// (aegis/tenant/v1/tenant.proto), enforced before this runs.
export async function createTenant(
  ctx: Pick<BrokerContext, "audit">,
  auditBase: AuditBase,
  input: { name: string; displayName: string },
): Promise<Tenant> {
  const displayName = input.displayName.trim() || input.name;
  return ctx.audit.transaction(
    async (tx) => {
      if (await tx.tenant.findUnique({ where: { name: input.name }, select: { id: true } })) {
        throw new DomainError("already_exists", "TENANT_NAME_TAKEN", `a tenant named "${input.name}" already exists`);
      }
      return tx.tenant.create({ data: { id: newId("tenant"), name: input.name, displayName } });
    },
    (tenant) => ({ ...auditBase, action: "tenant.create", target: tenant.id, outcome: "success", reason: "" }),
  );
}

export async function getTenant(ctx: Pick<BrokerContext, "prisma">, tenantId: string): Promise<Tenant> {
  const tenant = isId("tenant", tenantId) ? await ctx.prisma.tenant.findUnique({ where: { id: tenantId } }) : null;
  if (!tenant) throw notFound("tenant", "TENANT_NOT_FOUND");
  return tenant;
}

export async function listTenants(ctx: Pick<BrokerContext, "prisma">, page: Page) {
  const rows = await ctx.prisma.tenant.findMany({
    where: page.after ? { id: { gt: page.after } } : {},
    orderBy: { id: "asc" },
    take: page.size + 1,
  });
  return pageOf(rows, page, (t) => t.id);
}
