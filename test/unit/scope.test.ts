import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  canonicalScope,
  covers,
  formatScope,
  isSpecific,
  parseScope,
  type Scope,
  ScopeError,
  ScopeSet,
  type Selector,
  targetKeys,
} from "../../src/protocol/scope.js";

const value = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,20}$/);
const grantValue = fc.oneof(value, fc.constant("*"));
const selector = (v: fc.Arbitrary<string>) => fc.record({ provider: v, app: v, account: v }) as fc.Arbitrary<Selector>;
const targetAction = fc.constantFrom("credential.lease.create", "credential.lease.redeem", "credential.read");
const plainAction = fc.constantFrom("tenant.read", "grant.create", "token.revoke");
const requestScope: fc.Arbitrary<Scope> = fc.oneof(
  plainAction.map((action) => ({ action })),
  fc.record({ action: targetAction, selector: selector(value) }),
);
const grantScope: fc.Arbitrary<Scope> = fc.oneof(
  plainAction.map((action) => ({ action })),
  targetAction.map((action) => ({ action })),
  fc.record({ action: targetAction, selector: selector(grantValue) }),
);

describe("scope text", () => {
  it("round-trips: format then parse gives the same scope", () => {
    fc.assert(
      fc.property(grantScope, (scope) => {
        expect(parseScope(formatScope(scope), { wildcards: true })).toEqual(scope);
      }),
    );
    fc.assert(
      fc.property(requestScope, (scope) => {
        expect(parseScope(formatScope(scope), { wildcards: false })).toEqual(scope);
      }),
    );
  });

  it("canonicalises: parse then format is a fixed point", () => {
    fc.assert(
      fc.property(grantScope, fc.integer({ min: 0, max: 3 }), (scope, keep) => {
        // Omitting trailing `*` keys in a grant means the same grant.
        const parts = formatScope(scope).split(":");
        const trimmed = scope.selector ? parts.slice(0, 1 + 2 * Math.max(keep, 1)).join(":") : parts.join(":");
        const canonical = canonicalScope(trimmed);
        expect(canonicalScope(canonical)).toBe(canonical);
      }),
    );
    expect(canonicalScope("credential.lease.create:provider:gcp")).toBe(
      "credential.lease.create:provider:gcp:app:*:account:*",
    );
  });

  it.each([
    ["", "1-300 characters"],
    ["x".repeat(301), "1-300 characters"],
    ["Tenant.read", 'action "Tenant.read"'],
    ["tenant", 'action "tenant"'],
    ["tenant.read:provider:gcp", "tenant.read takes no selector"],
    ["credential.read:provider", "key:value pairs"],
    ["credential.read:app:x:provider:gcp", 'key "app" found where "provider" belongs'],
    ["credential.read:provider:gcp:account:x:app:y", 'key "account" found where "app" belongs'],
    ["credential.read:provider:gcp:app:x:account:y:region:z", "more than 3 keys"],
    ["credential.read:provider:GCP:app:x:account:y", 'provider: "GCP"'],
    ["credential.read:provider:gcp:app:-x:account:y", 'app: "-x"'],
    ["credential.read:provider:gcp:app::account:y", 'app: ""'],
    ["credential.read:provider:gcp:app:x y:account:y", 'app: "x y"'],
    ["credential.read:provider:gcp:app:x:account:gcp*", 'account: "gcp*"'],
    [`credential.read:provider:${"a".repeat(64)}:app:x:account:y`, "1-63"],
  ])("refuses %j, naming the bad part", (text, message) => {
    expect(() => parseScope(text, { wildcards: true })).toThrow(ScopeError);
    expect(() => parseScope(text, { wildcards: true })).toThrow(message);
  });

  it("refuses wildcards and missing keys in requests", () => {
    expect(() => parseScope("credential.read:provider:*:app:x:account:y", { wildcards: false })).toThrow(
      'provider: "*" is only allowed in grants',
    );
    expect(() => parseScope("credential.read:provider:gcp", { wildcards: false })).toThrow(
      "must name provider, app, account",
    );
  });
});

describe("matching", () => {
  it("a grant covers a request only with the same action and each value * or equal", () => {
    fc.assert(
      fc.property(grantScope, requestScope, (grant, wanted) => {
        const expected =
          grant.action === wanted.action &&
          (grant.selector === undefined
            ? wanted.selector === undefined
            : wanted.selector !== undefined &&
              targetKeys.every((k) => grant.selector?.[k] === "*" || grant.selector?.[k] === wanted.selector?.[k]));
        expect(covers(grant, wanted)).toBe(expected);
      }),
    );
  });

  it("every specific request is covered by itself and by the all-wildcard grant of its action", () => {
    fc.assert(
      fc.property(requestScope, (wanted) => {
        expect(isSpecific(wanted)).toBe(true);
        expect(covers(wanted, wanted)).toBe(true);
        if (wanted.selector) {
          expect(covers(parseScope(`${wanted.action}:provider:*`, { wildcards: true }), wanted)).toBe(true);
        }
      }),
    );
  });

  it("an action-only grant never covers a target, and a narrower grant never covers a wider one", () => {
    fc.assert(
      fc.property(targetAction, selector(grantValue), (action, sel) => {
        expect(covers({ action }, { action, selector: sel })).toBe(false);
        const all: Scope = { action, selector: { provider: "*", app: "*", account: "*" } };
        const allWild = targetKeys.every((k) => sel[k] === "*");
        expect(covers({ action, selector: sel }, all)).toBe(allWild);
      }),
    );
  });

  it("ScopeSet.allows needs a selector for target actions, the exact action otherwise", () => {
    expect(new ScopeSet(["credential.lease.create"]).allows("credential.lease.create")).toBe(false);
    expect(new ScopeSet(["credential.lease.create:provider:gcp"]).allows("credential.lease.create")).toBe(true);
    expect(new ScopeSet(["credential.lease.create:provider:gcp"]).allows("credential.lease.redeem")).toBe(false);
    expect(new ScopeSet(["tenant.read"]).allows("tenant.read")).toBe(true);
    expect(new ScopeSet(["tenant.read", "not a scope"]).scopes).toHaveLength(1);
  });
});
