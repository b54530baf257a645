// The scope a call needs, derived from its request the way the broker reads
// it: the method's action, and for an action that acts on a target its
// selector filled in from the request's target field, in the grammar of
// src/protocol/scope.ts (`credential.lease.create:provider:gcp:app:…:account:…`,
// `kms.sign:key:key_…`). Shared by the page builder (the value the Scopes
// field starts with) and the page (which follows the request as it is
// edited). Never a wildcard: a request names its target, and a scope the
// request does not fill in is left out rather than widened. An action whose
// target the request names only by an id of something else (a lease id for
// `credential.lease.redeem`) gets no derived scope: the person fills it in.
import { formatScope, parseScope, selectorKeysOf, wildcard } from "../../protocol/scope.js";

export interface ScopePolicy {
  readonly action: string;
  readonly authorization: string;
  readonly targetField: string;
}

const camel = (name: string) => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** The scope to ask for; "" when the method needs none, undefined when the request lacks its target. */
export function neededScope(policy: ScopePolicy, request: unknown): string | undefined {
  if (policy.authorization !== "grant") return "";
  const keys = selectorKeysOf(policy.action);
  if (!keys) return policy.action;
  if (!request || typeof request !== "object") return undefined;
  const fields = request as Record<string, unknown>;
  // A credential target is the request's `target` message (what the handler
  // parses, src/policy/targets.ts); a one-key selector is the id in the
  // method's target field (`key_id`, `server_id`).
  const target =
    keys.length === 1 ? fields[camel(policy.targetField)] : (fields.target ?? fields[camel(policy.targetField)]);
  const selector: Record<string, string> = {};
  if (keys.length === 1 && typeof target === "string") selector[keys[0] as string] = target;
  else if (target && typeof target === "object") {
    for (const key of keys) {
      const value = (target as Record<string, unknown>)[key];
      if (typeof value === "string") selector[key] = value;
    }
  }
  if (!keys.every((key) => selector[key] && selector[key] !== wildcard)) return undefined;
  const text = formatScope({ action: policy.action, selector });
  try {
    // A value the grammar refuses (an example's placeholder) is no scope to ask for.
    return formatScope(parseScope(text, { wildcards: false }));
  } catch {
    return undefined;
  }
}
