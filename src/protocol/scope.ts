// Scopes: what a grant gives and what a request asks for, in one text form:
//
//   action[:key:value]*
//   credential.lease.create:provider:gcp:app:billing-prod:account:deploy-bot
//
// Actions under `credential.` act on a credential target and take the
// selector keys `provider`, `app`, `account`, in that order;
// `resource_server.admin` acts on one resource server and takes the key
// `server` (its id): `resource_server.admin:server:rsv_…`; the KMS's actions
// (`kms.`, but `kms.key.create`) act on one key and take the key `key`:
// `kms.sign:key:key_…`. A grant may use
// `*` for a whole value and may stop after any key (the rest mean `*`); a
// request must name every key with a literal value. Every other action takes
// no selector. Canonical form spells out every key, so one grant has exactly
// one string, and matching is plain per-key comparison: nothing else is
// implied by a scope.
//
// These are the broker's own scopes. The scopes of a registered resource
// server (an application's `repo.read`, `model:invoke`) are another grammar,
// matched exactly and never parsed here: see `isApplicationScope`.

/** Lower-case dotted words: `tenant.read`, `credential.lease.redeem`. */
export const actionPattern = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;

/** Selector keys of credential actions: the credential target. */
export const targetKeys = ["provider", "app", "account"] as const;
export type TargetKey = (typeof targetKeys)[number];
/** A credential target, every key filled in. */
export type Selector = Readonly<Record<TargetKey, string>>;

/** Selector keys of `resource_server.admin`: the resource server's id. */
export const serverKeys = ["server"] as const;

/** Selector keys of the KMS's key actions: the key's id. */
export const kmsKeyKeys = ["key"] as const;

/** Creating a key is the one KMS action without a target. */
export const kmsKeyCreateAction = "kms.key.create";

/** The action that administers one resource server (its scopes, their grants). */
export const resourceServerAdminAction = "resource_server.admin";

export interface Scope {
  readonly action: string;
  /** Present for target actions that carry a selector; every key of the action filled in. */
  readonly selector?: Readonly<Record<string, string>>;
}

export const wildcard = "*";
export const maxScopeLength = 300;
const maxValueLength = 63;
const valuePattern = /^[a-z0-9][a-z0-9._-]*$/;

/** Bad scope text; `message` names the part that is wrong. */
export class ScopeError extends Error {
  override name = "ScopeError";
}

/** The selector keys `action` takes, in order; undefined for an action without a target. */
export function selectorKeysOf(action: string): readonly string[] | undefined {
  if (action.startsWith("credential.")) return targetKeys;
  if (action === resourceServerAdminAction) return serverKeys;
  if (action.startsWith("kms.") && action !== kmsKeyCreateAction) return kmsKeyKeys;
  return undefined;
}

/** Whether `action` acts on a target (and so takes a selector). */
export function isTargetAction(action: string): boolean {
  return selectorKeysOf(action) !== undefined;
}

/** The admin right over one resource server, in canonical form. */
export function resourceServerAdminScope(serverId: string): string {
  return `${resourceServerAdminAction}:server:${serverId}`;
}

/**
 * An application scope (RFC 6749 §3.3 scope-token): 1*( %x21 / %x23-5B /
 * %x5D-7E ), at most 128 characters. `repo.read`, `model:invoke`,
 * `sync:write` are all one opaque token; a colon means nothing here.
 */
export function isApplicationScope(text: string): boolean {
  return text.length > 0 && text.length <= 128 && /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(text);
}

/** A target value: lower-case, bounded; `*` only where wildcards are allowed. */
export function checkValue(key: string, value: string, wildcards: boolean): void {
  if (value === wildcard) {
    if (wildcards) return;
    throw new ScopeError(`${key}: "*" is only allowed in grants`);
  }
  if (value.length > maxValueLength || !valuePattern.test(value)) {
    throw new ScopeError(
      `${key}: "${value.slice(0, 70)}" must be 1-${maxValueLength} of a-z 0-9 . _ - and start with a letter or digit`,
    );
  }
}

/**
 * Parses scope text. `wildcards` allows `*` values and omitted trailing keys
 * (grants); without it every key must carry a literal value (requests).
 */
export function parseScope(text: string, options: { wildcards: boolean }): Scope {
  if (text.length === 0 || text.length > maxScopeLength) {
    throw new ScopeError(`scope must be 1-${maxScopeLength} characters`);
  }
  const [action = "", ...parts] = text.split(":");
  if (!actionPattern.test(action))
    throw new ScopeError(`action "${action.slice(0, 70)}" is not a dotted lower-case name`);
  if (parts.length === 0) return { action };
  const keys = selectorKeysOf(action);
  if (!keys) throw new ScopeError(`action ${action} takes no selector`);
  if (parts.length % 2 !== 0) throw new ScopeError(`selector of ${action} must be key:value pairs`);
  const selector: Record<string, string> = {};
  for (let i = 0; i < parts.length; i += 2) {
    const key = parts[i] as string;
    const expected = keys[i / 2];
    if (key !== expected) {
      throw new ScopeError(
        expected
          ? `selector key "${key.slice(0, 20)}" found where "${expected}" belongs (keys: ${keys.join(", ")}, in order)`
          : `selector has more than ${keys.length} keys`,
      );
    }
    checkValue(key, parts[i + 1] as string, options.wildcards);
    selector[key] = parts[i + 1] as string;
  }
  if (!options.wildcards && parts.length / 2 < keys.length) {
    throw new ScopeError(`selector must name ${keys.join(", ")}`);
  }
  for (const key of keys) selector[key] ??= wildcard;
  return { action, selector };
}

export function formatScope(scope: Scope): string {
  if (!scope.selector) return scope.action;
  const selector = scope.selector;
  const keys = selectorKeysOf(scope.action) ?? Object.keys(selector);
  return [scope.action, ...keys.flatMap((key) => [key, selector[key]])].join(":");
}

/** The canonical text of grant (wildcard) scope text. */
export function canonicalScope(text: string): string {
  return formatScope(parseScope(text, { wildcards: true }));
}

/**
 * True when the scope names one exact target (a selector without `*`), or is
 * a plain action that takes no selector. An action-only target scope is not.
 */
export function isSpecific(scope: Scope): boolean {
  if (!scope.selector) return !isTargetAction(scope.action);
  return Object.values(scope.selector).every((value) => value !== wildcard);
}

/**
 * Whether holding `grant` gives `wanted`. Same action; a target action is
 * only ever given by a grant with a selector, each of whose values is `*` or
 * equal. A wildcard in `wanted` is only covered by a wildcard in the grant.
 */
export function covers(grant: Scope, wanted: Scope): boolean {
  if (grant.action !== wanted.action) return false;
  if (!grant.selector || !wanted.selector) return !grant.selector && !wanted.selector;
  for (const key of selectorKeysOf(grant.action) ?? []) {
    const held = grant.selector[key];
    if (held !== wildcard && held !== wanted.selector[key]) return false;
  }
  return true;
}

/**
 * The scopes a caller holds, parsed once. `has` is exact (canonical text);
 * `allows` and `covers` apply the matching rules.
 */
export class ScopeSet implements Iterable<string> {
  readonly #texts: ReadonlySet<string>;
  #parsed: Scope[] | undefined;

  constructor(texts: Iterable<string>) {
    this.#texts = new Set(texts);
  }

  get size(): number {
    return this.#texts.size;
  }

  [Symbol.iterator](): Iterator<string> {
    return this.#texts[Symbol.iterator]();
  }

  has(text: string): boolean {
    return this.#texts.has(text);
  }

  /** Parsed scopes; texts that no longer parse (stored by an older release) give nothing. */
  get scopes(): readonly Scope[] {
    this.#parsed ??= [...this.#texts].flatMap((text) => {
      try {
        return [parseScope(text, { wildcards: true })];
      } catch {
        return [];
      }
    });
    return this.#parsed;
  }

  /**
   * Whether any held scope could authorize `action`: the action itself, or
   * for target actions, a grant of it with a selector. The target is then
   * checked against `covers` where it is known.
   */
  allows(action: string): boolean {
    if (!isTargetAction(action)) return this.#texts.has(action);
    return this.scopes.some((s) => s.action === action && s.selector !== undefined);
  }

  covers(wanted: Scope): boolean {
    return this.scopes.some((held) => covers(held, wanted));
  }
}
