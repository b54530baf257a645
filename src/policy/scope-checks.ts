// Scope rules as domain errors: request scope lists are parsed into
// canonical text (`invalid_argument` naming the bad part), and what a caller
// hands out or asks for must be covered by what it holds (`permission_denied`,
// with what was asked and what was held in the audit detail).
import type { Caller } from "../core/caller.js";
import { invalidArgument, permissionDenied } from "../core/errors/domain-error.js";
import type { Reason } from "../core/errors/reasons.js";
import {
  formatScope,
  parseScope,
  resourceServerAdminAction,
  type Scope,
  ScopeError,
  ScopeSet,
} from "../protocol/scope.js";

export const maxScopesPerRequest = 50;

/** Parses scope texts from a request field; duplicates fold into one. */
export function parseScopes(field: string, texts: readonly string[], options: { wildcards: boolean }): Scope[] {
  if (texts.length > maxScopesPerRequest) {
    throw invalidArgument([{ field, description: `at most ${maxScopesPerRequest} scopes` }]);
  }
  const scopes = new Map<string, Scope>();
  for (const text of texts) {
    try {
      const scope = parseScope(text, options);
      scopes.set(formatScope(scope), scope);
    } catch (error) {
      if (!(error instanceof ScopeError)) throw error;
      throw invalidArgument([{ field, description: `"${text.slice(0, 80)}": ${error.message}` }]);
    }
  }
  return [...scopes.values()];
}

/** Every scope in `wanted` is covered by the caller's grants: nobody hands out what they lack. */
export function assertCovers(
  caller: Caller,
  wanted: readonly Scope[],
  what: string,
  reason: Reason = "SCOPE_ESCALATION",
): void {
  const missing = wanted.filter((scope) => !caller.scopes.covers(scope)).map(formatScope);
  if (missing.length > 0) {
    throw permissionDenied(
      reason,
      `${what} needs scopes the caller does not hold: ${missing.join(" ").slice(0, 300)}`,
      `asked ${wanted.map(formatScope).join(" ")}; not held ${missing.join(" ")}; held ${[...caller.scopes].join(" ")}`,
    );
  }
}

/** A caller may act on `target` under `action` only when a grant with a selector covers it. */
export function assertTargetAllowed(caller: Caller, scope: Scope): void {
  if (!caller.scopes.covers(scope)) {
    throw permissionDenied(
      "TARGET_NOT_GRANTED",
      `no grant covers ${formatScope(scope)}`,
      `asked ${formatScope(scope)}; held ${[...caller.scopes].join(" ")}`,
    );
  }
}

/**
 * Whether the presented credential carries the admin right over resource
 * server `serverId` (`resource_server.admin:server:<id>`, or `:*`): it gives
 * and takes away that server's scopes, so it stands in for every one of them.
 */
export function administers(caller: Caller, serverId: string): boolean {
  return caller.scopes.covers({ action: resourceServerAdminAction, selector: { server: serverId } });
}

/** Scope sets of token `scope` claims, parsed once per distinct claim. */
const scopeSets = new Map<string, ScopeSet>();
export function scopeSetOf(claim: string): ScopeSet {
  let set = scopeSets.get(claim);
  if (!set) {
    if (scopeSets.size >= 10_000) scopeSets.clear();
    set = new ScopeSet(claim.split(" ").filter(Boolean));
    scopeSets.set(claim, set);
  }
  return set;
}
