// Tenant domain functions: creation with the first admin (audited), lookup
// and listing.
import type { Tenant } from "../../gen/prisma/client.js";
import type { AuditBase } from "../core/audit.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError, notFound } from "../core/errors/domain-error.js";
import { type Page, pageOf } from "../core/pagination.js";
import { type IssuedEnrollment, insertPerson, type PersonView } from "../people/index.js";
import { isId, newId } from "../protocol/ids.js";

export interface CreatedTenant {
  readonly tenant: Tenant;
  /** The first admin, not yet enrolled, and their one-time code. */
  readonly admin: PersonView;
  readonly enrollment: IssuedEnrollment;
  /** The tenant's own public client for `aegis login`. */
  readonly loginClientId: string;
}

/**
 * Creates a tenant that is usable through the API alone: its first admin
 * person, holding the tenant-admin grants (policy/admin-scopes.ts; never
 * `broker.admin`), with a one-time enrollment code, and a public device-flow
 * client for `aegis login`, allowed those scopes. One transaction, audited
 * as `tenant.create`. The name's form and the other fields' lengths are
 * request rules (aegis/tenant/v1/tenant.proto), enforced before this runs.
 */
export async function createTenant(
  ctx: Pick<BrokerContext, "audit" | "clock" | "config" | "rootKey">,
  auditBase: AuditBase,
  input: { name: string; displayName: string; adminDisplayName: string; adminUsername: string; adminEmail: string },
  adminScopes: readonly string[],
): Promise<CreatedTenant> {
  const displayName = input.displayName.trim() || input.name;
  return ctx.audit.transaction(
    async (tx) => {
      if (await tx.tenant.findUnique({ where: { name: input.name }, select: { id: true } })) {
        throw new DomainError("already_exists", "TENANT_NAME_TAKEN", `a tenant named "${input.name}" already exists`);
      }
      const tenant = await tx.tenant.create({ data: { id: newId("tenant"), name: input.name, displayName } });
      const { person: admin, enrollment } = await insertPerson(ctx, tx, {
        tenantId: tenant.id,
        displayName: input.adminDisplayName.trim() || "Administrator",
        username: input.adminUsername || (input.adminEmail ? "" : "admin"),
        email: input.adminEmail,
        scopes: adminScopes,
        grantedBy: auditBase.actorId ?? "broker",
      });
      const client = await tx.oAuthClient.create({
        data: {
          id: newId("oauthClient"),
          tenantId: tenant.id,
          name: "aegis CLI",
          allowedScopes: adminScopes.join(" "),
          allowedAudiences: "",
        },
      });
      return { tenant, admin, enrollment, loginClientId: client.id };
    },
    (created) => ({
      ...auditBase,
      action: "tenant.create",
      target: created.tenant.id,
      outcome: "success",
      reason: `admin ${created.admin.id}, login client ${created.loginClientId}`,
    }),
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
