// Resource servers: the APIs a tenant protects, each with an identifier (the
// token audience), a scope catalogue and a token policy. Creating one makes
// its own principal (kind service, which introspects its tokens) and gives
// the creator `resource_server.admin:server:<id>`, the one right that
// administers it; every change needs that right, checked before existence
// (AIP-193), so other tenants' ids answer like missing ones.
import type { Prisma, ResourceScope, ResourceServer } from "../../gen/prisma/client.js";
import type { AuditBase } from "../core/audit.js";
import type { Caller } from "../core/caller.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError, type FieldViolation, invalidArgument, notFound } from "../core/errors/domain-error.js";
import { type Page, pageOf } from "../core/pagination.js";
import { principalCutoff, type RevocationEntry, RevocationFeed } from "../core/revocation-feed.js";
import { endOpenEnrollments } from "../people/index.js";
import { assertTargetAllowed } from "../policy/scope-checks.js";
import { lockPrincipal } from "../principals/index.js";
import { isId, newId } from "../protocol/ids.js";
import { isApplicationScope, resourceServerAdminAction, resourceServerAdminScope } from "../protocol/scope.js";

type Ctx = Pick<BrokerContext, "prisma" | "audit" | "clock" | "config" | "feed">;
type Db = Prisma.TransactionClient | BrokerContext["prisma"];

export type ResourceServerWithScopes = ResourceServer & { scopes: ResourceScope[] };

export type PrincipalKindName = "person" | "agent" | "service";

export interface ScopeInput {
  readonly name: string;
  readonly description: string;
  readonly principalKinds: readonly PrincipalKindName[];
}

export interface ResourceServerInput {
  readonly identifier: string;
  readonly displayName: string;
  readonly description: string;
  readonly scopes: readonly ScopeInput[];
  readonly defaultTokenLifetimeSeconds: number;
  readonly maxTokenLifetimeSeconds: number;
  readonly requireDpop: boolean;
}

export interface ResourceServerChange {
  readonly displayName?: string | undefined;
  readonly description?: string | undefined;
  readonly defaultTokenLifetimeSeconds?: number | undefined;
  readonly maxTokenLifetimeSeconds?: number | undefined;
  readonly requireDpop?: boolean | undefined;
  readonly addScopes: readonly ScopeInput[];
  readonly deprecateScopes: readonly string[];
  readonly restoreScopes: readonly string[];
}

/** Needs the admin right over `serverId` (or over every server, `*`). */
function assertAdministers(caller: Caller, serverId: string): void {
  // A malformed id cannot be a selector value; it is simply not found.
  if (!isId("resourceServer", serverId)) throw notFound("resource server", "RESOURCE_SERVER_NOT_FOUND");
  assertTargetAllowed(caller, { action: resourceServerAdminAction, selector: { server: serverId } });
}

function checkScopes(field: string, scopes: readonly ScopeInput[]): FieldViolation[] {
  const seen = new Set<string>();
  const violations: FieldViolation[] = [];
  scopes.forEach((scope, i) => {
    if (!isApplicationScope(scope.name)) {
      violations.push({
        field: `${field}[${i}].name`,
        description: "must be an RFC 6749 scope-token of 1-128 characters",
      });
    } else if (seen.has(scope.name)) {
      violations.push({ field: `${field}[${i}].name`, description: `"${scope.name}" appears twice` });
    }
    seen.add(scope.name);
  });
  return violations;
}

/** Lifetimes within the broker's bounds: 0 means the broker's value; the default never exceeds the maximum. */
function lifetimes(
  config: Ctx["config"],
  requested: { defaultSeconds: number; maxSeconds: number },
): { defaultSeconds: number; maxSeconds: number } {
  const broker = config.tokenLifetime;
  const maxSeconds = requested.maxSeconds || broker.maxSeconds;
  const defaultSeconds = requested.defaultSeconds || Math.min(broker.defaultSeconds, maxSeconds);
  const violations: FieldViolation[] = [];
  if (maxSeconds > broker.maxSeconds) {
    violations.push({
      field: "max_token_lifetime",
      description: `must be at most the broker's maximum, ${broker.maxSeconds}s`,
    });
  }
  if (defaultSeconds > maxSeconds) {
    violations.push({ field: "default_token_lifetime", description: `must be at most ${maxSeconds}s` });
  }
  if (violations.length > 0) throw invalidArgument(violations);
  return { defaultSeconds, maxSeconds };
}

const scopeRow = (scope: ScopeInput) => ({
  name: scope.name,
  description: scope.description,
  principalKinds: [...new Set(scope.principalKinds)].sort().join(" "),
});

/** Registers a resource server; the caller becomes its administrator. */
export async function createResourceServer(
  ctx: Ctx,
  caller: Caller,
  auditBase: AuditBase,
  input: ResourceServerInput,
): Promise<ResourceServerWithScopes> {
  const violations = checkScopes("scopes", input.scopes);
  if (input.identifier === ctx.config.publicUrl) {
    violations.push({ field: "identifier", description: "is the broker's own URL; the broker is built in" });
  }
  if (violations.length > 0) throw invalidArgument(violations);
  const life = lifetimes(ctx.config, {
    defaultSeconds: input.defaultTokenLifetimeSeconds,
    maxSeconds: input.maxTokenLifetimeSeconds,
  });
  const id = newId("resourceServer");
  const changed: RevocationEntry = {
    kind: "principal",
    subject: caller.principalId,
    expiresAt: new Date(ctx.clock.now().getTime() + 120_000),
  };
  const server = await ctx.audit.transaction(
    async (tx) => {
      const taken = await tx.resourceServer.findUnique({ where: { identifier: input.identifier } });
      if (taken) {
        throw new DomainError(
          "already_exists",
          "RESOURCE_SERVER_EXISTS",
          "a resource server with this identifier is already registered",
        );
      }
      const principalId = newId("principal");
      await tx.principal.create({
        data: {
          id: principalId,
          tenantId: caller.tenantId,
          kind: "service",
          displayName: input.displayName.trim(),
          description: `resource server ${input.identifier}`,
        },
      });
      const created = await tx.resourceServer.create({
        data: {
          id,
          tenantId: caller.tenantId,
          identifier: input.identifier,
          displayName: input.displayName.trim(),
          description: input.description,
          defaultLifetimeSeconds: life.defaultSeconds,
          maxLifetimeSeconds: life.maxSeconds,
          requireDpop: input.requireDpop,
          principalId,
          createdBy: caller.principalId,
          scopes: { create: input.scopes.map(scopeRow) },
        },
        include: { scopes: { orderBy: { name: "asc" } } },
      });
      // The creator's admin right; their cached grants are dropped everywhere,
      // and their open enrollment codes end, as for any grant given.
      await lockPrincipal(tx, caller.principalId);
      await endOpenEnrollments(tx, caller.principalId, ctx.clock.now());
      await tx.grant.create({
        data: {
          id: newId("grant"),
          tenantId: caller.tenantId,
          principalId: caller.principalId,
          scope: resourceServerAdminScope(id),
          grantedBy: caller.principalId,
        },
      });
      await RevocationFeed.publish(tx, changed);
      return created;
    },
    (s) => ({
      ...auditBase,
      action: "resource_server.create",
      target: `${s.id} ${s.identifier}`.slice(0, 300),
      outcome: "success",
      reason: "",
    }),
  );
  ctx.feed.apply(changed);
  return server;
}

async function findResourceServer(db: Db, tenantId: string, id: string): Promise<ResourceServerWithScopes> {
  const server = isId("resourceServer", id)
    ? await db.resourceServer.findFirst({
        where: { id, tenantId },
        include: { scopes: { orderBy: { name: "asc" } } },
      })
    : null;
  if (!server) throw notFound("resource server", "RESOURCE_SERVER_NOT_FOUND");
  return server;
}

export function getResourceServer(ctx: Pick<Ctx, "prisma">, caller: Caller, id: string) {
  return findResourceServer(ctx.prisma, caller.tenantId, id);
}

export async function listResourceServers(ctx: Pick<Ctx, "prisma">, caller: Caller, page: Page) {
  const rows = await ctx.prisma.resourceServer.findMany({
    where: { tenantId: caller.tenantId, ...(page.after ? { id: { gt: page.after } } : {}) },
    include: { scopes: { orderBy: { name: "asc" } } },
    orderBy: { id: "asc" },
    take: page.size + 1,
  });
  return pageOf(rows, page, (s) => s.id);
}

/** Names in `names` that the catalogue lacks, as field violations. */
function unknownScopes(field: string, names: readonly string[], catalogue: ReadonlySet<string>): FieldViolation[] {
  return names
    .map((name, i) => ({ name, i }))
    .filter(({ name }) => !catalogue.has(name))
    .map(({ name, i }) => ({
      field: `${field}[${i}]`,
      description: `"${name.slice(0, 130)}" is not in the catalogue`,
    }));
}

export async function updateResourceServer(
  ctx: Ctx,
  caller: Caller,
  auditBase: AuditBase,
  id: string,
  change: ResourceServerChange,
): Promise<ResourceServerWithScopes> {
  assertAdministers(caller, id);
  const changed = serverChanged(ctx, id);
  const updated = await ctx.audit.transaction(
    async (tx) => {
      const server = await findResourceServer(tx, caller.tenantId, id);
      await RevocationFeed.publish(tx, changed);
      const catalogue = new Set([...server.scopes.map((s) => s.name), ...change.addScopes.map((s) => s.name)]);
      const violations = [
        ...checkScopes("add_scopes", change.addScopes),
        ...unknownScopes("deprecate_scopes", change.deprecateScopes, catalogue),
        ...unknownScopes("restore_scopes", change.restoreScopes, catalogue),
      ];
      if (violations.length > 0) throw invalidArgument(violations);
      const life = lifetimes(ctx.config, {
        defaultSeconds: change.defaultTokenLifetimeSeconds ?? server.defaultLifetimeSeconds,
        maxSeconds: change.maxTokenLifetimeSeconds ?? server.maxLifetimeSeconds,
      });
      for (const scope of change.addScopes) {
        const row = scopeRow(scope);
        await tx.resourceScope.upsert({
          where: { resourceServerId_name: { resourceServerId: id, name: scope.name } },
          create: { resourceServerId: id, ...row },
          update: { description: row.description, principalKinds: row.principalKinds },
        });
      }
      const mark = async (names: readonly string[], deprecated: boolean) => {
        if (names.length === 0) return;
        await tx.resourceScope.updateMany({
          where: { resourceServerId: id, name: { in: [...names] } },
          data: { deprecated },
        });
      };
      await mark(change.deprecateScopes, true);
      await mark(change.restoreScopes, false);
      await tx.resourceServer.update({
        where: { id },
        data: {
          ...(change.displayName === undefined ? {} : { displayName: change.displayName.trim() }),
          ...(change.description === undefined ? {} : { description: change.description }),
          ...(change.requireDpop === undefined ? {} : { requireDpop: change.requireDpop }),
          defaultLifetimeSeconds: life.defaultSeconds,
          maxLifetimeSeconds: life.maxSeconds,
        },
      });
      return findResourceServer(tx, caller.tenantId, id);
    },
    (s) => ({
      ...auditBase,
      action: "resource_server.update",
      target: s.id,
      outcome: "success",
      reason: [
        change.addScopes.length ? `added ${change.addScopes.map((x) => x.name).join(" ")}` : "",
        change.deprecateScopes.length ? `deprecated ${change.deprecateScopes.join(" ")}` : "",
        change.restoreScopes.length ? `restored ${change.restoreScopes.join(" ")}` : "",
      ]
        .filter(Boolean)
        .join("; ")
        .slice(0, 500),
    }),
  );
  ctx.feed.apply(changed);
  return updated;
}

/** Tells every instance a server changed, so what it cached of it goes (no token is voided by it). */
function serverChanged(ctx: Ctx, serverId: string): RevocationEntry {
  return { kind: "principal", subject: serverId, expiresAt: new Date(ctx.clock.now().getTime() + 120_000) };
}

/**
 * Deletes a resource server, its principal and its admin rights. With
 * grants of its scopes outstanding it is refused unless `force`; then the
 * grants go too and their holders' earlier tokens are voided.
 */
export async function deleteResourceServer(
  ctx: Ctx,
  caller: Caller,
  auditBase: AuditBase,
  id: string,
  force: boolean,
): Promise<void> {
  assertAdministers(caller, id);
  const now = ctx.clock.now();
  let cutoffs: RevocationEntry[] = [];
  await ctx.audit.transaction(
    async (tx) => {
      const server = await findResourceServer(tx, caller.tenantId, id);
      const grants = await tx.resourceGrant.findMany({
        where: { resourceServerId: id },
        select: { principalId: true },
      });
      if (grants.length > 0 && !force) {
        throw new DomainError(
          "failed_precondition",
          "RESOURCE_SERVER_IN_USE",
          `${grants.length} grant(s) of its scopes exist; take them away first or delete with force`,
        );
      }
      const admins = await tx.grant.findMany({
        where: { tenantId: caller.tenantId, scope: resourceServerAdminScope(id) },
        select: { principalId: true },
      });
      const affected = new Set([...grants, ...admins].map((g) => g.principalId));
      affected.add(server.principalId);
      cutoffs = [
        ...[...affected].map((p) => principalCutoff(p, now, ctx.config.tokenLifetime.maxSeconds)),
        serverChanged(ctx, id),
      ];
      await tx.resourceGrant.deleteMany({ where: { resourceServerId: id } });
      await tx.grant.deleteMany({ where: { tenantId: caller.tenantId, scope: resourceServerAdminScope(id) } });
      await tx.resourceServer.delete({ where: { id } });
      await tx.principal.delete({ where: { id: server.principalId } });
      for (const cutoff of cutoffs) await RevocationFeed.publish(tx, cutoff);
    },
    () => ({
      ...auditBase,
      action: "resource_server.delete",
      target: id,
      outcome: "success",
      reason: force ? "force" : "",
    }),
  );
  for (const cutoff of cutoffs) ctx.feed.apply(cutoff);
}

/** The resource server whose own principal is `principalId`, if it is one. */
export function resourceServerOfPrincipal(db: Db, principalId: string) {
  return db.resourceServer.findUnique({ where: { principalId } });
}
