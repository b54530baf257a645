// Custom roles: named sets of scopes a tenant admin defines. Scopes are
// checked to be givable at all (broker scopes parse and authorize
// something, never `broker.admin`; application scopes are in their server's
// catalogue of this tenant), and a scope is put into a role only by a
// credential that could give it (the grants' `assertMayHandOut`: broker
// scopes covered by the credential presented, a resource server's scopes
// with the admin right over it). Assigning checks the rule again, but a
// role's scopes also decide what unassigning another role leaves in place
// (roles/assignments.ts), so without this `role.update` alone could keep a
// grant an admin takes away. Built-in roles answer by name and cannot be
// changed. Other tenants' roles answer like missing ones.
import type { Prisma } from "../../gen/prisma/client.js";
import type { AuditBase } from "../core/audit.js";
import { type Caller, elevatedScope } from "../core/caller.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError, invalidArgument, notFound } from "../core/errors/domain-error.js";
import { type Page, pageOf } from "../core/pagination.js";
import { assertGrantable, assertMayHandOut, type GivenScope, givableScope } from "../grants/index.js";
import { isId, newId } from "../protocol/ids.js";
import { type BuiltInRole, type BuiltInRoleName, builtInRoleNames } from "./built-in-roles.js";

export type Ctx = Pick<BrokerContext, "prisma" | "audit" | "clock" | "config" | "feed">;
export type Db = Prisma.TransactionClient | BrokerContext["prisma"];
export type BuiltIns = ReadonlyMap<BuiltInRoleName, BuiltInRole>;

export interface RoleView {
  readonly id: string;
  /** Empty for a built-in role. */
  readonly tenantId: string;
  readonly name: string;
  readonly description: string;
  /** Broker scopes first, then by resource server and scope. */
  readonly scopes: readonly GivenScope[];
  readonly builtIn: boolean;
  readonly createdAt?: Date | undefined;
  readonly updatedAt?: Date | undefined;
}

export const isBuiltInName = (id: string): id is BuiltInRoleName =>
  (builtInRoleNames as readonly string[]).includes(id);

/** Broker scopes (no server) first, then by server id, then by scope; plain code-unit order, as PostgreSQL's "C" collation. */
function byServerThenScope(a: GivenScope, b: GivenScope): number {
  const compare = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  return compare(a.resourceServerId, b.resourceServerId) || compare(a.scope, b.scope);
}

function builtInView(role: BuiltInRole): RoleView {
  return {
    id: role.name,
    tenantId: "",
    name: role.name,
    description: role.description,
    scopes: role.scopes.map((scope) => ({ scope, resourceServerId: "" })),
    builtIn: true,
  };
}

type RoleRow = Prisma.RoleGetPayload<{ include: { scopes: true } }>;

function customView(row: RoleRow): RoleView {
  return {
    id: row.id,
    tenantId: row.tenantId,
    name: row.name,
    description: row.description,
    scopes: row.scopes.map((s) => ({ scope: s.scope, resourceServerId: s.resourceServerId })).sort(byServerThenScope),
    builtIn: false,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/** A role of the caller's tenant by id, or a built-in one by name; not_found otherwise. */
export async function findRole(db: Db, builtIns: BuiltIns, tenantId: string, roleId: string): Promise<RoleView> {
  if (isBuiltInName(roleId)) return builtInView(builtIns.get(roleId) as BuiltInRole);
  const row = isId("role", roleId)
    ? await db.role.findFirst({ where: { id: roleId, tenantId }, include: { scopes: true } })
    : null;
  if (!row) throw notFound("role", "ROLE_NOT_FOUND");
  return customView(row);
}

/**
 * Canonical, de-duplicated scopes, each givable in this tenant (field names
 * point at the bad entry) and each one the caller's credential may hand out
 * (checked before the catalogues are read).
 */
async function checkedScopes(
  tx: Prisma.TransactionClient,
  caller: Caller,
  what: string,
  field: string,
  scopes: readonly GivenScope[],
): Promise<GivenScope[]> {
  const seen = new Map<string, GivenScope>();
  for (const [i, input] of scopes.entries()) {
    let given: GivenScope;
    try {
      given = givableScope(input);
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      throw invalidArgument([{ field: `${field}[${i}].scope`, description: error.message }]);
    }
    if (given.resourceServerId === "" && given.scope === elevatedScope) {
      throw invalidArgument([
        { field: `${field}[${i}].scope`, description: "the elevated grant is only given at bootstrap" },
      ]);
    }
    seen.set(`${given.resourceServerId} ${given.scope}`, given);
  }
  const checked = [...seen.values()];
  assertMayHandOut(caller, checked, what);
  for (const given of checked) {
    if (given.resourceServerId !== "") await assertGrantable(tx, caller.tenantId, given.resourceServerId, given.scope);
  }
  return checked;
}

export async function createRole(
  ctx: Ctx,
  caller: Caller,
  auditBase: AuditBase,
  input: { name: string; description: string; scopes: readonly GivenScope[] },
): Promise<RoleView> {
  if (isBuiltInName(input.name)) {
    throw invalidArgument([{ field: "name", description: "is the name of a built-in role" }]);
  }
  return ctx.audit.transaction(
    async (tx) => {
      const scopes = await checkedScopes(tx, caller, `defining role ${input.name}`, "scopes", input.scopes);
      const taken = await tx.role.findUnique({
        where: { tenantId_name: { tenantId: caller.tenantId, name: input.name } },
      });
      if (taken) throw new DomainError("already_exists", "ROLE_EXISTS", "a role with this name already exists");
      const row = await tx.role.create({
        data: {
          id: newId("role"),
          tenantId: caller.tenantId,
          name: input.name,
          description: input.description,
          createdBy: caller.principalId,
          scopes: { create: scopes },
        },
        include: { scopes: true },
      });
      return customView(row);
    },
    (r) => ({
      ...auditBase,
      action: "role.create",
      target: `${r.id} ${r.name}`,
      outcome: "success",
      reason: r.scopes
        .map((s) => (s.resourceServerId ? `${s.resourceServerId} ${s.scope}` : s.scope))
        .join(" ")
        .slice(0, 500),
    }),
  );
}

export function getRole(ctx: Pick<Ctx, "prisma">, builtIns: BuiltIns, caller: Caller, roleId: string) {
  return findRole(ctx.prisma, builtIns, caller.tenantId, roleId);
}

/** The built-in roles (by their fixed order), then the tenant's custom roles by id. */
export async function listRoles(
  ctx: Pick<Ctx, "prisma">,
  builtIns: BuiltIns,
  caller: Caller,
  page: Page,
): Promise<{ items: RoleView[]; nextPageToken: string }> {
  const builtInStart = page.after === undefined ? 0 : builtInRoleNames.indexOf(page.after as BuiltInRoleName) + 1;
  const inBuiltIns = page.after === undefined || isBuiltInName(page.after);
  const firsts = inBuiltIns
    ? builtInRoleNames.slice(builtInStart).map((name) => builtInView(builtIns.get(name) as BuiltInRole))
    : [];
  const after = inBuiltIns ? undefined : page.after;
  const rows = await ctx.prisma.role.findMany({
    where: { tenantId: caller.tenantId, ...(after ? { id: { gt: after } } : {}) },
    include: { scopes: true },
    orderBy: { id: "asc" },
    take: Math.max(0, page.size + 1 - firsts.length),
  });
  return pageOf([...firsts, ...rows.map(customView)], page, (r) => r.id);
}

/** A custom role of the tenant, to change or delete; built-in roles are refused, others not found. */
export async function customRoleRow(tx: Prisma.TransactionClient, tenantId: string, roleId: string) {
  if (isBuiltInName(roleId)) {
    throw new DomainError("failed_precondition", "ROLE_BUILT_IN", "built-in roles cannot be changed");
  }
  const row = isId("role", roleId) ? await tx.role.findFirst({ where: { id: roleId, tenantId } }) : null;
  if (!row) throw notFound("role", "ROLE_NOT_FOUND");
  return row;
}

export async function updateRole(
  ctx: Ctx,
  caller: Caller,
  auditBase: AuditBase,
  roleId: string,
  change: { description?: string | undefined; addScopes: readonly GivenScope[]; removeScopes: readonly GivenScope[] },
): Promise<RoleView> {
  return ctx.audit.transaction(
    async (tx) => {
      const row = await customRoleRow(tx, caller.tenantId, roleId);
      const add = await checkedScopes(tx, caller, `adding to role ${row.name}`, "add_scopes", change.addScopes);
      // Removing needs no catalogue check (the scope may be deprecated since).
      const remove = change.removeScopes.map((s) => {
        try {
          return givableScope(s);
        } catch {
          return s;
        }
      });
      for (const s of remove) {
        await tx.roleScope.deleteMany({
          where: { roleId: row.id, resourceServerId: s.resourceServerId, scope: s.scope },
        });
      }
      if (add.length > 0)
        await tx.roleScope.createMany({ data: add.map((s) => ({ roleId: row.id, ...s })), skipDuplicates: true });
      const updated = await tx.role.update({
        where: { id: row.id },
        data: {
          ...(change.description === undefined ? {} : { description: change.description }),
          updatedAt: ctx.clock.now(),
        },
        include: { scopes: true },
      });
      return customView(updated);
    },
    (r) => ({
      ...auditBase,
      action: "role.update",
      target: r.id,
      outcome: "success",
      reason: [
        change.addScopes.length ? `added ${change.addScopes.map((s) => s.scope).join(" ")}` : "",
        change.removeScopes.length ? `removed ${change.removeScopes.map((s) => s.scope).join(" ")}` : "",
      ]
        .filter(Boolean)
        .join("; ")
        .slice(0, 500),
    }),
  );
}
