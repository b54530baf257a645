// Giving and taking away scopes. Nobody changes their own grants, nobody
// hands out (or takes away) what their own grants do not cover, and the
// elevated grant is given only at bootstrap. Taking a grant away voids the
// principal's earlier tokens on every instance (they carry the old scopes);
// giving one drops cached grants so it applies at once.
import type { Grant } from "../../gen/prisma/client.js";
import type { AuditBase } from "../core/audit.js";
import { type Caller, elevatedScope } from "../core/caller.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError, invalidArgument, notFound, permissionDenied } from "../core/errors/domain-error.js";
import { principalCutoff, RevocationFeed } from "../core/revocation-feed.js";
import { assertCovers } from "../policy/scope-checks.js";
import { getPrincipal } from "../principals/index.js";
import { isId, newId } from "../protocol/ids.js";
import { formatScope, isTargetAction, parseScope, type Scope, ScopeError, ScopeSet } from "../protocol/scope.js";

type Ctx = Pick<BrokerContext, "prisma" | "audit" | "clock" | "config" | "feed">;

function parseGrantScope(text: string): Scope {
  let scope: Scope;
  try {
    scope = parseScope(text, { wildcards: true });
  } catch (error) {
    if (!(error instanceof ScopeError)) throw error;
    throw invalidArgument([{ field: "scope", description: error.message }]);
  }
  // It would authorize nothing: say so rather than store a grant that misleads.
  if (isTargetAction(scope.action) && !scope.selector) {
    throw invalidArgument([
      { field: "scope", description: `${scope.action} needs a selector (e.g. ${scope.action}:provider:gcp)` },
    ]);
  }
  return scope;
}

/** Who may change `principalId`'s grants to include or drop `scope`. */
function assertMayChange(caller: Caller, principalId: string, scope: Scope, verb: string): void {
  if (principalId === caller.principalId) {
    throw permissionDenied("SELF_GRANT", "a principal cannot change its own grants");
  }
  if (formatScope(scope) === elevatedScope) {
    throw permissionDenied("SCOPE_ESCALATION", "the elevated grant is only given at bootstrap");
  }
  assertCovers(caller, [scope], `${verb} this scope`);
}

export async function createGrant(
  ctx: Ctx,
  caller: Caller,
  auditBase: AuditBase,
  input: { principalId: string; scope: string },
): Promise<Grant> {
  const scope = parseGrantScope(input.scope);
  const text = formatScope(scope);
  assertMayChange(caller, input.principalId, scope, "giving");
  const changed = {
    kind: "principal" as const,
    subject: input.principalId,
    expiresAt: new Date(ctx.clock.now().getTime() + 120_000),
  };
  const grant = await ctx.audit.transaction(
    async (tx) => {
      const principal = await getPrincipal(tx, caller.tenantId, input.principalId);
      if (principal.status === "revoked") {
        throw new DomainError("failed_precondition", "PRINCIPAL_REVOKED", "the principal is revoked");
      }
      const existing = await tx.grant.findUnique({
        where: { principalId_scope: { principalId: principal.id, scope: text } },
      });
      if (existing) return existing;
      await RevocationFeed.publish(tx, changed);
      return tx.grant.create({
        data: {
          id: newId("grant"),
          tenantId: caller.tenantId,
          principalId: principal.id,
          scope: text,
          grantedBy: caller.principalId,
        },
      });
    },
    (g) => ({
      ...auditBase,
      action: "grant.create",
      target: `${g.principalId} ${g.scope}`,
      outcome: "success",
      reason: "",
    }),
  );
  ctx.feed.apply(changed);
  return grant;
}

export async function deleteGrant(ctx: Ctx, caller: Caller, auditBase: AuditBase, grantId: string): Promise<void> {
  const grant = isId("grant", grantId)
    ? await ctx.prisma.grant.findFirst({ where: { id: grantId, tenantId: caller.tenantId } })
    : null;
  if (!grant) throw notFound("grant", "GRANT_NOT_FOUND");
  // Stored grants may predate today's rules; take them as they are.
  const scope = new ScopeSet([grant.scope]).scopes[0] ?? { action: grant.scope };
  assertMayChange(caller, grant.principalId, scope, "taking away");
  const now = ctx.clock.now();
  const cutoff = principalCutoff(grant.principalId, now, ctx.config.tokenLifetime.maxSeconds);
  await ctx.audit.transaction(
    async (tx) => {
      await tx.grant.deleteMany({ where: { id: grant.id } });
      await RevocationFeed.publish(tx, cutoff);
    },
    () => ({
      ...auditBase,
      action: "grant.delete",
      target: `${grant.principalId} ${grant.scope}`,
      outcome: "success",
      reason: "",
    }),
  );
  ctx.feed.apply(cutoff);
}

export async function listGrants(ctx: Pick<Ctx, "prisma">, caller: Caller, principalId: string): Promise<Grant[]> {
  await getPrincipal(ctx.prisma, caller.tenantId, principalId);
  return ctx.prisma.grant.findMany({ where: { principalId }, orderBy: { scope: "asc" } });
}
