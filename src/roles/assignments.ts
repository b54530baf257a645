// Assigning roles: a role's scopes are given exactly as `CreateGrant` gives
// them, by the grants domain's own rule and writes (`assertMayGive`,
// `giveGrant`), checked against the credential presented on this call, in
// one audited transaction: all of the role or nothing. Like `CreateGrant`,
// an assignment that gives anything ends the principal's open enrollment
// codes (people/enrollments.ts says why).
//
// Which grants an assignment gave is recorded (role_assignment_grant), so
// unassigning takes away exactly those and leaves:
// - grants the principal held before (given directly, or by a role
//   assigned earlier): the assignment did not give them, so it does not
//   take them away;
// - grants another role of the principal also gives: the record moves to
//   that assignment, which takes the grant away when it goes in turn.
// A grant taken away directly (`DeleteGrant`) and given again later is a new
// grant with a new id, so an old record never reaches it.
//
// Taking a grant away follows `DeleteGrant`'s rule for each grant removed,
// and voids the principal's earlier tokens through the revocation feed.
import type { Prisma, RoleAssignment } from "../../gen/prisma/client.js";
import type { AuditBase } from "../core/audit.js";
import type { Caller } from "../core/caller.js";
import { DomainError, notFound, permissionDenied } from "../core/errors/domain-error.js";
import { type Page, pageOf } from "../core/pagination.js";
import { principalCutoff, type RevocationEntry, RevocationFeed } from "../core/revocation-feed.js";
import {
  afterGrantsGiven,
  assertGrantee,
  assertMayGive,
  assertMayTakeAway,
  type GivenScope,
  giveGrant,
  grantsChanged,
  takeAwayGrants,
} from "../grants/index.js";
import { getPrincipal, lockPrincipal } from "../principals/index.js";
import { newId } from "../protocol/ids.js";
import { type BuiltIns, type Ctx, customRoleRow, findRole } from "./roles.js";

const keyOf = (s: GivenScope) => `${s.resourceServerId} ${s.scope}`;
const scopeList = (scopes: readonly GivenScope[]) =>
  scopes.map((s) => (s.resourceServerId ? `${s.resourceServerId} ${s.scope}` : s.scope)).join(" ");

function assertNotSelf(caller: Caller, principalId: string): void {
  if (principalId === caller.principalId) {
    throw permissionDenied("SELF_GRANT", "a principal cannot change its own grants");
  }
}

export async function assignRole(
  ctx: Ctx,
  builtIns: BuiltIns,
  caller: Caller,
  auditBase: AuditBase,
  input: { principalId: string; roleId: string },
): Promise<{ assignment: RoleAssignment; given: GivenScope[] }> {
  assertNotSelf(caller, input.principalId);
  const changed = grantsChanged(ctx, input.principalId);
  const result = await ctx.audit.transaction(
    async (tx) => {
      const role = await findRole(tx, builtIns, caller.tenantId, input.roleId);
      const scopes = assertMayGive(caller, input.principalId, role.scopes, `assigning role ${role.name}`);
      const principal = await getPrincipal(tx, caller.tenantId, input.principalId);
      await lockPrincipal(tx, principal.id);
      assertGrantee(principal);
      const assignment = await tx.roleAssignment.upsert({
        where: { principalId_roleId: { principalId: principal.id, roleId: role.id } },
        create: {
          id: newId("roleAssignment"),
          tenantId: caller.tenantId,
          roleId: role.id,
          principalId: principal.id,
          assignedBy: caller.principalId,
        },
        update: {},
      });
      const given: GivenScope[] = [];
      for (const scope of scopes) {
        const { grant, created } = await giveGrant(tx, caller, principal, scope);
        if (!created) continue;
        await tx.roleAssignmentGrant.create({ data: { assignmentId: assignment.id, grantId: grant.id, ...scope } });
        given.push(scope);
      }
      if (given.length > 0) {
        await afterGrantsGiven(ctx, tx, principal.id);
        await RevocationFeed.publish(tx, changed);
      }
      return { assignment, given };
    },
    (r) => ({
      ...auditBase,
      action: "role.assign",
      target: `${r.assignment.principalId} ${r.assignment.roleId}`,
      outcome: "success",
      reason: r.given.length ? `gave ${scopeList(r.given)}`.slice(0, 500) : "gave nothing new",
    }),
  );
  if (result.given.length > 0) ctx.feed.apply(changed);
  return result;
}

/** Removes one assignment and the grants only it gives; returns what was taken away. */
async function unassignInTransaction(
  tx: Prisma.TransactionClient,
  builtIns: BuiltIns,
  caller: Caller,
  assignment: RoleAssignment,
): Promise<GivenScope[]> {
  assertNotSelf(caller, assignment.principalId);
  const links = await tx.roleAssignmentGrant.findMany({ where: { assignmentId: assignment.id } });
  const others = await tx.roleAssignment.findMany({
    where: { principalId: assignment.principalId, id: { not: assignment.id } },
    orderBy: { id: "asc" },
  });
  const stillGiven = new Map<string, string>();
  for (const other of others) {
    const role = await findRole(tx, builtIns, caller.tenantId, other.roleId);
    for (const scope of role.scopes) if (!stillGiven.has(keyOf(scope))) stillGiven.set(keyOf(scope), other.id);
  }
  const removedIds: string[] = [];
  const removed: GivenScope[] = [];
  for (const link of links) {
    const keeper = stillGiven.get(keyOf(link));
    if (keeper) {
      await tx.roleAssignmentGrant.update({
        where: { assignmentId_grantId: { assignmentId: link.assignmentId, grantId: link.grantId } },
        data: { assignmentId: keeper },
      });
      continue;
    }
    const exists = link.resourceServerId
      ? await tx.resourceGrant.findUnique({ where: { id: link.grantId } })
      : await tx.grant.findUnique({ where: { id: link.grantId } });
    if (!exists) continue;
    assertMayTakeAway(caller, { principalId: assignment.principalId, ...link });
    removedIds.push(link.grantId);
    removed.push({ scope: link.scope, resourceServerId: link.resourceServerId });
  }
  await takeAwayGrants(tx, removedIds);
  await tx.roleAssignment.delete({ where: { id: assignment.id } });
  return removed;
}

export async function unassignRole(
  ctx: Ctx,
  builtIns: BuiltIns,
  caller: Caller,
  auditBase: AuditBase,
  input: { principalId: string; roleId: string },
): Promise<GivenScope[]> {
  assertNotSelf(caller, input.principalId);
  const cutoff = principalCutoff(input.principalId, ctx.clock.now(), ctx.config.tokenLifetime.maxSeconds);
  const removed = await ctx.audit.transaction(
    async (tx) => {
      await getPrincipal(tx, caller.tenantId, input.principalId);
      const assignment = await tx.roleAssignment.findUnique({
        where: { principalId_roleId: { principalId: input.principalId, roleId: input.roleId } },
      });
      if (!assignment || assignment.tenantId !== caller.tenantId) {
        throw notFound("role assignment", "ROLE_ASSIGNMENT_NOT_FOUND");
      }
      const taken = await unassignInTransaction(tx, builtIns, caller, assignment);
      if (taken.length > 0) await RevocationFeed.publish(tx, cutoff);
      return taken;
    },
    (r) => ({
      ...auditBase,
      action: "role.unassign",
      target: `${input.principalId} ${input.roleId}`.slice(0, 300),
      outcome: "success",
      reason: r.length ? `took away ${scopeList(r)}`.slice(0, 500) : "took away nothing",
    }),
  );
  if (removed.length > 0) ctx.feed.apply(cutoff);
  return removed;
}

/** Deletes a custom role; while assigned, refused unless `force`, which unassigns it from everyone first. */
export async function deleteRole(
  ctx: Ctx,
  builtIns: BuiltIns,
  caller: Caller,
  auditBase: AuditBase,
  roleId: string,
  force: boolean,
): Promise<void> {
  const now = ctx.clock.now();
  const cutoffs: RevocationEntry[] = [];
  await ctx.audit.transaction(
    async (tx) => {
      const row = await customRoleRow(tx, caller.tenantId, roleId);
      const assignments = await tx.roleAssignment.findMany({ where: { tenantId: caller.tenantId, roleId: row.id } });
      if (assignments.length > 0 && !force) {
        throw new DomainError(
          "failed_precondition",
          "ROLE_IN_USE",
          `the role is assigned to ${assignments.length} principal(s); unassign it first or delete with force`,
        );
      }
      for (const assignment of assignments) {
        const taken = await unassignInTransaction(tx, builtIns, caller, assignment);
        if (taken.length > 0) {
          cutoffs.push(principalCutoff(assignment.principalId, now, ctx.config.tokenLifetime.maxSeconds));
        }
      }
      for (const cutoff of cutoffs) await RevocationFeed.publish(tx, cutoff);
      await tx.role.delete({ where: { id: row.id } });
    },
    () => ({
      ...auditBase,
      action: "role.delete",
      target: roleId.slice(0, 300),
      outcome: "success",
      reason: force ? "force" : "",
    }),
  );
  for (const cutoff of cutoffs) ctx.feed.apply(cutoff);
}

/** Assignments of the caller's tenant, optionally of one principal or one role, by id. */
export async function listRoleAssignments(
  ctx: Pick<Ctx, "prisma">,
  caller: Caller,
  filter: { principalId: string; roleId: string },
  page: Page,
) {
  const rows = await ctx.prisma.roleAssignment.findMany({
    where: {
      tenantId: caller.tenantId,
      ...(filter.principalId ? { principalId: filter.principalId } : {}),
      ...(filter.roleId ? { roleId: filter.roleId } : {}),
      ...(page.after ? { id: { gt: page.after } } : {}),
    },
    orderBy: { id: "asc" },
    take: page.size + 1,
  });
  return pageOf(rows, page, (a) => a.id);
}
