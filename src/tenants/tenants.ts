// Tenant domain functions: creation (audited), lookup and listing.
import type { Tenant } from "../../gen/prisma/client.js";
import type { AuditBase } from "../core/audit.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError, type FieldViolation, invalidArgument, notFound } from "../core/errors/domain-error.js";
import { type Page, pageOf } from "../core/pagination.js";
import { isId, newId } from "../protocol/ids.js";

const namePattern = /^[a-z][a-z0-9-]{2,62}$/;
const maxDisplayName = 200;

export async function createTenant(
  ctx: Pick<BrokerContext, "audit">,
  auditBase: AuditBase,
  input: { name: string; displayName: string },
): Promise<Tenant> {
  const violations: FieldViolation[] = [];
  if (!namePattern.test(input.name)) {
    violations.push({
      field: "name",
      description: "must be 3-63 lower-case letters, digits or '-', starting with a letter",
    });
  }
  const displayName = input.displayName.trim() || input.name;
  if (displayName.length > maxDisplayName || /\p{Cc}/u.test(displayName)) {
    violations.push({ field: "display_name", description: `must be at most ${maxDisplayName} printable characters` });
  }
  if (violations.length > 0) throw invalidArgument(violations);

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
