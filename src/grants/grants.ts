// Giving and taking away scopes. Nobody changes their own grants, nobody
// hands out (or takes away) what their own grants do not cover, and the
// elevated grant is given only at bootstrap. A resource server's scopes are
// given only by holders of the admin right over that server, only from its
// catalogue, and only to the kinds of principal each scope allows. Taking a
// grant away voids the principal's earlier tokens on every instance (they
// carry the old scopes); giving one drops cached grants so it applies at once.
import type { Prisma } from "../../gen/prisma/client.js";
import type { AuditBase } from "../core/audit.js";
import { type Caller, elevatedScope } from "../core/caller.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError, invalidArgument, notFound, permissionDenied } from "../core/errors/domain-error.js";
import { principalCutoff, RevocationFeed } from "../core/revocation-feed.js";
import { administers, assertCovers } from "../policy/scope-checks.js";
import { getPrincipal } from "../principals/index.js";
import { isId, newId } from "../protocol/ids.js";
import {
  formatScope,
  isApplicationScope,
  isTargetAction,
  parseScope,
  type Scope,
  ScopeError,
  ScopeSet,
} from "../protocol/scope.js";

type Ctx = Pick<BrokerContext, "prisma" | "audit" | "clock" | "config" | "feed">;

/** A grant of either kind: a broker scope, or (with `resourceServerId`) one of a resource server's. */
export interface GrantView {
  readonly id: string;
  readonly principalId: string;
  readonly scope: string;
  /** Empty for a broker scope. */
  readonly resourceServerId: string;
  readonly grantedBy: string | null;
  readonly createdAt: Date;
}

const brokerGrant = (g: Omit<GrantView, "resourceServerId">): GrantView => ({ ...g, resourceServerId: "" });

/** Drops the principal's cached grants on every instance, so a new grant applies at once. */
function grantsChanged(ctx: Ctx, principalId: string) {
  return { kind: "principal" as const, subject: principalId, expiresAt: new Date(ctx.clock.now().getTime() + 120_000) };
}

/** Only holders of the admin right over a server give or take away its scopes. */
function assertAdministers(caller: Caller, principalId: string, serverId: string): void {
  if (principalId === caller.principalId) {
    throw permissionDenied("SELF_GRANT", "a principal cannot change its own grants");
  }
  if (!isId("resourceServer", serverId) || !administers(caller, serverId)) {
    throw permissionDenied(
      "NOT_RESOURCE_SERVER_ADMIN",
      "giving or taking away a resource server's scopes needs the admin right over that server",
      `caller ${caller.credentialType} ${caller.credentialId} lacks resource_server.admin:server:${serverId.slice(0, 40)}`,
    );
  }
}

/** Gives one scope of a resource server's catalogue (exact, not deprecated, allowed to the holder's kind). */
async function createResourceGrant(
  ctx: Ctx,
  caller: Caller,
  auditBase: AuditBase,
  input: { principalId: string; scope: string; resourceServerId: string },
): Promise<GrantView> {
  if (!isApplicationScope(input.scope)) {
    throw invalidArgument([{ field: "scope", description: "must be an RFC 6749 scope-token of 1-128 characters" }]);
  }
  assertAdministers(caller, input.principalId, input.resourceServerId);
  const changed = grantsChanged(ctx, input.principalId);
  const grant = await ctx.audit.transaction(
    async (tx) => {
      const principal = await getPrincipal(tx, caller.tenantId, input.principalId);
      if (principal.status === "revoked") {
        throw new DomainError("failed_precondition", "PRINCIPAL_REVOKED", "the principal is revoked");
      }
      await assertGrantable(tx, caller.tenantId, input.resourceServerId, input.scope, principal.kind);
      const key = { principalId: principal.id, resourceServerId: input.resourceServerId, scope: input.scope };
      const existing = await tx.resourceGrant.findUnique({ where: { principalId_resourceServerId_scope: key } });
      if (existing) return existing;
      await RevocationFeed.publish(tx, changed);
      return tx.resourceGrant.create({
        data: { id: newId("grant"), tenantId: caller.tenantId, ...key, grantedBy: caller.principalId },
      });
    },
    (g) => ({
      ...auditBase,
      action: "grant.create",
      target: `${g.principalId} ${g.resourceServerId} ${g.scope}`.slice(0, 300),
      outcome: "success",
      reason: "",
    }),
  );
  ctx.feed.apply(changed);
  return grant;
}

/** The scope is in the server's catalogue, not deprecated, and allowed to principals of `kind`. */
async function assertGrantable(
  tx: Prisma.TransactionClient,
  tenantId: string,
  serverId: string,
  scope: string,
  kind: string,
): Promise<void> {
  const server = await tx.resourceServer.findFirst({ where: { id: serverId, tenantId } });
  if (!server) throw notFound("resource server", "RESOURCE_SERVER_NOT_FOUND");
  const entry = await tx.resourceScope.findUnique({
    where: { resourceServerId_name: { resourceServerId: serverId, name: scope } },
  });
  if (!entry) {
    throw new DomainError(
      "invalid_argument",
      "INVALID_SCOPE",
      `"${scope.slice(0, 130)}" is not a scope of ${server.identifier.slice(0, 100)}`,
      {
        fieldViolations: [{ field: "scope", description: "not in the resource server's catalogue" }],
      },
    );
  }
  if (entry.deprecated) {
    throw new DomainError("failed_precondition", "SCOPE_DEPRECATED", `${scope.slice(0, 130)} is deprecated`);
  }
  const kinds = entry.principalKinds.split(" ").filter(Boolean);
  if (kinds.length > 0 && !kinds.includes(kind)) {
    throw new DomainError(
      "failed_precondition",
      "SCOPE_NOT_FOR_KIND",
      `${scope.slice(0, 130)} may only be held by: ${kinds.join(", ")}`,
    );
  }
}

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
  input: { principalId: string; scope: string; resourceServerId: string },
): Promise<GrantView> {
  if (input.resourceServerId !== "") return createResourceGrant(ctx, caller, auditBase, input);
  const scope = parseGrantScope(input.scope);
  const text = formatScope(scope);
  assertMayChange(caller, input.principalId, scope, "giving");
  const changed = grantsChanged(ctx, input.principalId);
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
  return brokerGrant(grant);
}

/** A grant of the caller's tenant, of either kind; not_found for anything else. */
async function findGrant(ctx: Pick<Ctx, "prisma">, caller: Caller, grantId: string): Promise<GrantView> {
  if (!isId("grant", grantId)) throw notFound("grant", "GRANT_NOT_FOUND");
  const where = { id: grantId, tenantId: caller.tenantId };
  const broker = await ctx.prisma.grant.findFirst({ where });
  if (broker) return brokerGrant(broker);
  const resource = await ctx.prisma.resourceGrant.findFirst({ where });
  if (!resource) throw notFound("grant", "GRANT_NOT_FOUND");
  return resource;
}

export async function deleteGrant(ctx: Ctx, caller: Caller, auditBase: AuditBase, grantId: string): Promise<void> {
  const grant = await findGrant(ctx, caller, grantId);
  if (grant.resourceServerId !== "") {
    assertAdministers(caller, grant.principalId, grant.resourceServerId);
  } else {
    // Stored grants may predate today's rules; take them as they are.
    const scope = new ScopeSet([grant.scope]).scopes[0] ?? { action: grant.scope };
    assertMayChange(caller, grant.principalId, scope, "taking away");
  }
  const now = ctx.clock.now();
  const cutoff = principalCutoff(grant.principalId, now, ctx.config.tokenLifetime.maxSeconds);
  await ctx.audit.transaction(
    async (tx) => {
      if (grant.resourceServerId !== "") await tx.resourceGrant.deleteMany({ where: { id: grant.id } });
      else await tx.grant.deleteMany({ where: { id: grant.id } });
      await RevocationFeed.publish(tx, cutoff);
    },
    () => ({
      ...auditBase,
      action: "grant.delete",
      target: `${grant.principalId} ${grant.resourceServerId ? `${grant.resourceServerId} ` : ""}${grant.scope}`.slice(
        0,
        300,
      ),
      outcome: "success",
      reason: "",
    }),
  );
  ctx.feed.apply(cutoff);
}

/** Every grant of one principal: broker scopes first, then each resource server's, by scope. */
export async function listGrants(ctx: Pick<Ctx, "prisma">, caller: Caller, principalId: string): Promise<GrantView[]> {
  await getPrincipal(ctx.prisma, caller.tenantId, principalId);
  const [broker, resource] = await Promise.all([
    ctx.prisma.grant.findMany({ where: { principalId }, orderBy: { scope: "asc" } }),
    ctx.prisma.resourceGrant.findMany({
      where: { principalId },
      orderBy: [{ resourceServerId: "asc" }, { scope: "asc" }],
    }),
  ]);
  return [...broker.map(brokerGrant), ...resource];
}
