// Credential targets (provider, app, account) in requests and in queries.
import type { HeldScopes } from "../core/caller.js";
import { invalidArgument } from "../core/errors/domain-error.js";
import { checkValue, ScopeError, type Selector, targetKeys, wildcard } from "../protocol/scope.js";

/** A request's target: every key present with a literal value. */
export function parseTarget(field: string, target: Partial<Selector> | undefined): Selector {
  const violations = [];
  for (const key of targetKeys) {
    try {
      checkValue(key, target?.[key] ?? "", false);
    } catch (error) {
      if (!(error instanceof ScopeError)) throw error;
      violations.push({ field: `${field}.${key}`, description: error.message });
    }
  }
  if (violations.length > 0) throw invalidArgument(violations);
  return { provider: target?.provider ?? "", app: target?.app ?? "", account: target?.account ?? "" };
}

export function targetOf(row: Selector): Selector {
  return { provider: row.provider, app: row.app, account: row.account };
}

/**
 * A `where` fragment matching the targets that `action` grants in `scopes`
 * cover, so a list shows exactly what a get would allow. A grant of `*` at
 * every key covers everything and filters nothing (an `OR` of an empty
 * condition matched nothing at all, which hid every credential from the
 * bootstrap admin); without any such grant it matches nothing.
 */
export function coveredTargets(
  scopes: HeldScopes,
  action: string,
): { OR: Partial<Selector>[] } | Record<string, never> {
  const conditions = scopes.scopes
    .filter((s) => s.action === action && s.selector)
    .map((s) => {
      const where: Record<string, string> = {};
      for (const key of targetKeys) if (s.selector?.[key] !== wildcard) where[key] = s.selector?.[key] as string;
      return where;
    });
  if (conditions.some((where) => Object.keys(where).length === 0)) return {};
  return { OR: conditions };
}
