// What a token for an audience may say. The broker's own URL is the broker;
// any other audience must be a resource server registered in the caller's
// tenant (RFC 8707 `invalid_target` otherwise), whose catalogue bounds the
// scopes (`invalid_scope` for any other), whose grants bound what a client
// holds, and whose policy sets lifetimes and DPoP. Application scopes are
// compared exactly: `model:invoke` is one opaque scope-token.
import type { Caller } from "../core/caller.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError, permissionDenied } from "../core/errors/domain-error.js";
import type { Db } from "../db/database.js";
import { maxScopesPerRequest } from "../policy/scope-checks.js";
import { isApplicationScope } from "../protocol/scope.js";
import type { ResourceServerWithScopes } from "./resource-servers.js";

/**
 * What minting for a resource server reads on every call – the server with
 * its catalogue, and a principal's grants on it – kept per database client
 * (one per broker) until the revocation feed says it changed: a grant given
 * or taken away names its holder, a server changed or deleted names its id,
 * and every instance drops what those entries name (as API keys' cached
 * grants are dropped). Misses are not kept, so a new server counts at once.
 */
class AudienceCache {
  readonly servers = new Map<string, ResourceServerWithScopes>();
  readonly grants = new Map<string, ReadonlySet<string>>();

  forget(subject: string): void {
    for (const [key, server] of this.servers) if (server.id === subject) this.servers.delete(key);
    for (const key of this.grants.keys()) {
      if (key.startsWith(`${subject} `) || key.endsWith(` ${subject}`)) this.grants.delete(key);
    }
  }

  static bounded<V>(map: Map<string, V>, key: string, value: V): V {
    if (map.size >= 10_000) map.clear();
    map.set(key, value);
    return value;
  }
}

const caches = new WeakMap<object, AudienceCache>();
const cacheOf = (db: Db): AudienceCache => {
  const cache = caches.get(db) ?? new AudienceCache();
  caches.set(db, cache);
  return cache;
};

/** Drops what a revocation-feed entry names (a principal's grants, a server), for the broker on `db`. */
export function forgetAudiences(db: Db, subject: string): void {
  caches.get(db)?.forget(subject);
}

export type Audience =
  | { readonly kind: "broker" }
  | { readonly kind: "resource"; readonly server: ResourceServerWithScopes };

function invalidScope(message: string): DomainError {
  return new DomainError("invalid_argument", "INVALID_SCOPE", message, {
    fieldViolations: [{ field: "scopes", description: message }],
  });
}

/** The broker, or the caller's tenant's resource server with this identifier. */
export async function audienceOf(
  ctx: { prisma: Db; config: Pick<BrokerContext["config"], "publicUrl"> },
  tenantId: string,
  identifier: string,
): Promise<Audience> {
  if (identifier === ctx.config.publicUrl) return { kind: "broker" };
  const cache = cacheOf(ctx.prisma);
  const key = `${tenantId} ${identifier}`;
  let server = cache.servers.get(key);
  if (!server) {
    const found = await ctx.prisma.resourceServer.findFirst({
      where: { identifier, tenantId },
      include: { scopes: true },
    });
    if (found) server = AudienceCache.bounded(cache.servers, key, found);
  }
  if (!server) {
    throw new DomainError(
      "invalid_argument",
      "INVALID_TARGET",
      `audience ${identifier.slice(0, 100)} is not a resource server registered in this tenant`,
      { fieldViolations: [{ field: "audience", description: "not a registered resource server" }] },
    );
  }
  return { kind: "resource", server };
}

/**
 * The requested scopes of `server`, deduplicated: each a scope-token of its
 * catalogue, not deprecated, and allowed to principals of `kind`.
 */
export function catalogueScopes(
  server: ResourceServerWithScopes,
  requested: readonly string[],
  kind: Caller["kind"],
): string[] {
  if (requested.length > maxScopesPerRequest) throw invalidScope(`at most ${maxScopesPerRequest} scopes`);
  const scopes = [...new Set(requested)];
  const catalogue = new Map(server.scopes.map((s) => [s.name, s]));
  for (const name of scopes) {
    const entry = isApplicationScope(name) ? catalogue.get(name) : undefined;
    if (!entry) throw invalidScope(`"${name.slice(0, 130)}" is not a scope of ${server.identifier.slice(0, 100)}`);
    if (entry.deprecated) throw invalidScope(`${name} is deprecated by ${server.identifier.slice(0, 100)}`);
    const kinds = entry.principalKinds.split(" ").filter(Boolean);
    if (kinds.length > 0 && !kinds.includes(kind)) {
      throw permissionDenied("SCOPE_NOT_FOR_KIND", `${name} may only be held by: ${kinds.join(", ")}`);
    }
  }
  return scopes;
}

/**
 * The scopes of `serverId` that the credential presented by `caller`
 * carries: its principal's grants on that server, narrowed to what the
 * credential was made for (see Caller.applicationScopes).
 */
export async function heldApplicationScopes(
  db: Db,
  caller: Pick<Caller, "principalId" | "applicationScopes">,
  serverId: string,
): Promise<Set<string>> {
  const carried = caller.applicationScopes;
  if (carried === undefined) return new Set();
  if (carried !== "all" && carried.resourceServerId !== serverId) return new Set();
  const cache = cacheOf(db);
  const key = `${caller.principalId} ${serverId}`;
  let held = cache.grants.get(key);
  if (!held) {
    const grants = await db.resourceGrant.findMany({
      where: { principalId: caller.principalId, resourceServerId: serverId },
      select: { scope: true },
    });
    held = AudienceCache.bounded(cache.grants, key, new Set(grants.map((g) => g.scope)));
  }
  if (carried === "all") return new Set(held);
  const grantsHeld = held;
  return new Set(carried.scopes.filter((s) => grantsHeld.has(s)));
}

/** Every scope in `wanted` is carried by the presented credential; else permission_denied, with both sides in the audit. */
export async function assertApplicationScopesHeld(
  db: Db,
  caller: Caller,
  server: ResourceServerWithScopes,
  wanted: readonly string[],
  what: string,
): Promise<void> {
  if (wanted.length === 0) return;
  const held = await heldApplicationScopes(db, caller, server.id);
  const missing = wanted.filter((s) => !held.has(s));
  if (missing.length > 0) {
    throw permissionDenied(
      "SCOPE_NOT_GRANTED",
      `${what} needs scopes the caller does not hold: ${missing.join(" ").slice(0, 300)}`,
      `${server.id} asked ${wanted.join(" ")}; not held ${missing.join(" ")}; held ${[...held].join(" ")}`.slice(
        0,
        480,
      ),
    );
  }
}

/** A lifetime under the server's policy: its default when undefined, refused above its maximum. */
export function lifetimeFor(server: ResourceServerWithScopes, requested: number | undefined): number {
  if (requested !== undefined && requested > server.maxLifetimeSeconds) {
    throw new DomainError(
      "invalid_argument",
      "INVALID_ARGUMENT",
      `lifetime: must be at most ${server.maxLifetimeSeconds}s`,
      {
        fieldViolations: [
          {
            field: "lifetime",
            description: `must be at most ${server.maxLifetimeSeconds}s for ${server.identifier.slice(0, 100)}`,
          },
        ],
      },
    );
  }
  return requested ?? server.defaultLifetimeSeconds;
}

/** A DPoP-requiring server gets no Bearer token. */
export function assertBindingAllowed(server: ResourceServerWithScopes, jkt: string | undefined): void {
  if (server.requireDpop && !jkt) {
    throw new DomainError(
      "failed_precondition",
      "DPOP_REQUIRED",
      `tokens for ${server.identifier.slice(0, 100)} must be DPoP-bound: send a DPoP proof`,
    );
  }
}
