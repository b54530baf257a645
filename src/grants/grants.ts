// Giving and taking away scopes. Nobody changes their own grants, nobody
// hands out (or takes away) what their own grants do not cover, and the
// elevated grant is given only at bootstrap. A resource server's scopes are
// given only by holders of the admin right over that server, only from its
// catalogue, and only to the kinds of principal each scope allows. Taking a
// grant away voids the principal's earlier tokens on every instance (they
// carry the old scopes); giving one drops cached grants so it applies at once,
// and ends the principal's open enrollment codes (`afterGrantsGiven`). The
// same rule, without a recipient, bounds what a role may be defined with
// (`assertMayHandOut`): a role is grants waiting to be given.
import type { Prisma } from "../../gen/prisma/client.js";
import type { AuditBase } from "../core/audit.js";
import { type Caller, elevatedScope } from "../core/caller.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError, invalidArgument, notFound, permissionDenied } from "../core/errors/domain-error.js";
import { principalCutoff, type RevocationEntry, RevocationFeed } from "../core/revocation-feed.js";
import { endOpenEnrollments } from "../people/index.js";
import { administers, assertCovers } from "../policy/scope-checks.js";
import { getPrincipal, lockPrincipal } from "../principals/index.js";
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

/** One scope to give: a broker scope (`resourceServerId` empty) or a resource server's. */
export interface GivenScope {
  readonly scope: string;
  /** Empty for a broker scope. */
  readonly resourceServerId: string;
}

/** Only holders of the admin right over a server give or take away its scopes. */
function assertAdministers(caller: Caller, principalId: string, serverId: string): void {
  if (principalId === caller.principalId) {
    throw permissionDenied("SELF_GRANT", "a principal cannot change its own grants");
  }
  assertAdministersServer(caller, serverId);
}

function assertAdministersServer(caller: Caller, serverId: string): void {
  if (!isId("resourceServer", serverId) || !administers(caller, serverId)) {
    throw permissionDenied(
      "NOT_RESOURCE_SERVER_ADMIN",
      "giving or taking away a resource server's scopes needs the admin right over that server",
      `caller ${caller.credentialType} ${caller.credentialId} lacks resource_server.admin:server:${serverId.slice(0, 40)}`,
    );
  }
}

/**
 * The scope in canonical form, refused when it could never be given: a
 * broker scope that does not parse or would authorize nothing, or an
 * application scope that is not an RFC 6749 scope-token. Says nothing of
 * who may give it.
 */
export function givableScope(input: GivenScope): GivenScope {
  if (input.resourceServerId !== "") {
    if (!isApplicationScope(input.scope)) {
      throw invalidArgument([{ field: "scope", description: "must be an RFC 6749 scope-token of 1-128 characters" }]);
    }
    return { scope: input.scope, resourceServerId: input.resourceServerId };
  }
  return { scope: formatScope(parseGrantScope(input.scope)), resourceServerId: "" };
}

/**
 * The no-escalation rule for giving `scopes` to `principalId`, checked
 * against the credential presented on this call before anything is
 * written: nobody changes their own grants, and the rest is
 * `assertMayHandOut`. Returns the scopes in canonical form.
 */
export function assertMayGive(
  caller: Caller,
  principalId: string,
  scopes: readonly GivenScope[],
  what = "giving this scope",
): GivenScope[] {
  if (principalId === caller.principalId) {
    throw permissionDenied("SELF_GRANT", "a principal cannot change its own grants");
  }
  return assertMayHandOut(caller, scopes, what);
}

/**
 * What may be handed out by the credential presented, to anyone: never the
 * elevated grant, every broker scope covered by the caller's grants, and a
 * resource server's scopes only with the admin right over that server.
 * Giving a grant and putting a scope into a role (which gives it to every
 * later assignee, and keeps it for them when another role that gave it is
 * unassigned) both apply it. Returns the scopes in canonical form.
 */
export function assertMayHandOut(caller: Caller, scopes: readonly GivenScope[], what: string): GivenScope[] {
  const given = scopes.map(givableScope);
  const broker = given.filter((g) => g.resourceServerId === "").map((g) => parseGrantScope(g.scope));
  if (broker.some((scope) => formatScope(scope) === elevatedScope)) {
    throw permissionDenied("SCOPE_ESCALATION", "the elevated grant is only given at bootstrap");
  }
  assertCovers(caller, broker, what);
  for (const server of new Set(given.map((g) => g.resourceServerId).filter(Boolean))) {
    assertAdministersServer(caller, server);
  }
  return given;
}

/**
 * What giving `principalId` new grants ends, in the caller's transaction,
 * which has held the principal's row (`lockPrincipal`) since before it gave
 * them: its open enrollment codes, issued under the credential rule for the
 * grants it held then (people/enrollments.ts).
 */
export async function afterGrantsGiven(
  ctx: Pick<Ctx, "clock">,
  tx: Prisma.TransactionClient,
  principalId: string,
): Promise<void> {
  await endOpenEnrollments(tx, principalId, ctx.clock.now());
}

/**
 * Gives `scope` to `principal` inside the caller's transaction, once the
 * rule was checked (`assertMayGive`): a resource server's scope must be in
 * its catalogue, not deprecated and allowed to the principal's kind. An
 * existing grant is returned as it is (`created` false). The caller
 * publishes the grants change and audits.
 */
export async function giveGrant(
  tx: Prisma.TransactionClient,
  caller: Caller,
  principal: { id: string; kind: string },
  given: GivenScope,
): Promise<{ grant: GrantView; created: boolean }> {
  if (given.resourceServerId !== "") {
    await assertGrantable(tx, caller.tenantId, given.resourceServerId, given.scope, principal.kind);
    const key = { principalId: principal.id, resourceServerId: given.resourceServerId, scope: given.scope };
    const existing = await tx.resourceGrant.findUnique({ where: { principalId_resourceServerId_scope: key } });
    if (existing) return { grant: existing, created: false };
    const grant = await tx.resourceGrant.create({
      data: { id: newId("grant"), tenantId: caller.tenantId, ...key, grantedBy: caller.principalId },
    });
    return { grant, created: true };
  }
  const existing = await tx.grant.findUnique({
    where: { principalId_scope: { principalId: principal.id, scope: given.scope } },
  });
  if (existing) return { grant: brokerGrant(existing), created: false };
  const grant = await tx.grant.create({
    data: {
      id: newId("grant"),
      tenantId: caller.tenantId,
      principalId: principal.id,
      scope: given.scope,
      grantedBy: caller.principalId,
    },
  });
  return { grant: brokerGrant(grant), created: true };
}

/** Drops the principal's cached grants on every instance, so a new grant applies at once. */
export function grantsChanged(ctx: Pick<Ctx, "clock">, principalId: string): RevocationEntry {
  return { kind: "principal" as const, subject: principalId, expiresAt: new Date(ctx.clock.now().getTime() + 120_000) };
}

/** A principal that can still be given grants (revoked is final). */
export function assertGrantee(principal: { status: string }): void {
  if (principal.status === "revoked") {
    throw new DomainError("failed_precondition", "PRINCIPAL_REVOKED", "the principal is revoked");
  }
}

export async function createGrant(
  ctx: Ctx,
  caller: Caller,
  auditBase: AuditBase,
  input: { principalId: string; scope: string; resourceServerId: string },
): Promise<GrantView> {
  const [given] = assertMayGive(caller, input.principalId, [input]) as [GivenScope];
  const changed = grantsChanged(ctx, input.principalId);
  const grant = await ctx.audit.transaction(
    async (tx) => {
      const principal = await getPrincipal(tx, caller.tenantId, input.principalId);
      await lockPrincipal(tx, principal.id);
      assertGrantee(principal);
      const result = await giveGrant(tx, caller, principal, given);
      if (result.created) {
        await afterGrantsGiven(ctx, tx, principal.id);
        await RevocationFeed.publish(tx, changed);
      }
      return result.grant;
    },
    (g) => ({
      ...auditBase,
      action: "grant.create",
      target: `${g.principalId} ${g.resourceServerId ? `${g.resourceServerId} ` : ""}${g.scope}`.slice(0, 300),
      outcome: "success",
      reason: "",
    }),
  );
  ctx.feed.apply(changed);
  return grant;
}

/** The scope is in the server's catalogue, not deprecated, and allowed to principals of `kind` (any when omitted). */
export async function assertGrantable(
  tx: Prisma.TransactionClient,
  tenantId: string,
  serverId: string,
  scope: string,
  kind?: string,
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
  if (kind !== undefined && kinds.length > 0 && !kinds.includes(kind)) {
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

/**
 * Who may take `grant` away from its holder: for a broker scope, the rule
 * of giving it (stored grants may predate today's rules; they are taken as
 * they are); for a resource server's scope, the admin right over it.
 */
export function assertMayTakeAway(caller: Caller, grant: GivenScope & { principalId: string }): void {
  if (grant.resourceServerId !== "") {
    assertAdministers(caller, grant.principalId, grant.resourceServerId);
    return;
  }
  if (grant.principalId === caller.principalId) {
    throw permissionDenied("SELF_GRANT", "a principal cannot change its own grants");
  }
  const scope = new ScopeSet([grant.scope]).scopes[0] ?? { action: grant.scope };
  if (formatScope(scope) === elevatedScope) {
    throw permissionDenied("SCOPE_ESCALATION", "the elevated grant is only given at bootstrap");
  }
  assertCovers(caller, [scope], "taking away this scope");
}

/** Deletes grants of either kind by id, inside the caller's transaction; the caller publishes the cutoff. */
export async function takeAwayGrants(tx: Prisma.TransactionClient, grantIds: readonly string[]): Promise<void> {
  if (grantIds.length === 0) return;
  await tx.grant.deleteMany({ where: { id: { in: [...grantIds] } } });
  await tx.resourceGrant.deleteMany({ where: { id: { in: [...grantIds] } } });
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
  assertMayTakeAway(caller, grant);
  const now = ctx.clock.now();
  const cutoff = principalCutoff(grant.principalId, now, ctx.config.tokenLifetime.maxSeconds);
  await ctx.audit.transaction(
    async (tx) => {
      await takeAwayGrants(tx, [grant.id]);
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
