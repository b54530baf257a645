// The grants of administrators, defined once: what a tenant admin holds
// (CreateTenant's first admin; later the built-in tenant-admin role) and
// what the operators' bootstrap admin holds beyond it. Both are built from
// the actions the protos declare, so a new RPC's action reaches them
// without anyone listing it.
import type { DescService } from "@bufbuild/protobuf";
import { elevatedScope } from "../core/caller.js";
import { canonicalScope, selectorKeysOf } from "../protocol/scope.js";
import { Authorization, handlerCheckedActions, policyOf, Visibility } from "./method-policy.js";

/** The grant of `action` on every target it can take (the action alone when it takes none). */
export function everyTargetScope(action: string): string {
  const [key] = selectorKeysOf(action) ?? [];
  return key ? canonicalScope(`${action}:${key}:*`) : action;
}

/** Grants of every given action (plus those handlers check), each on every target, canonical and sorted. */
export function actionScopes(actions: readonly string[]): string[] {
  return [...new Set([...actions, ...handlerCheckedActions])].map(everyTargetScope).sort();
}

/**
 * A tenant admin's grants: every public action of the broker that is
 * authorized by grant, on every target. Never `broker.admin` (the
 * operators' only cross-tenant right) nor the private actions it unlocks.
 */
export function tenantAdminScopes(services: readonly DescService[]): string[] {
  const actions = services.flatMap((service) =>
    service.methods.flatMap((method) => {
      const policy = policyOf(method);
      return policy?.authorization === Authorization.GRANT && policy.visibility === Visibility.PUBLIC
        ? [policy.action]
        : [];
    }),
  );
  return actionScopes(actions);
}

/** The operators' first admin: the elevated grant and every grantable action, public or private. */
export function operatorAdminScopes(grantableActions: readonly string[]): string[] {
  return [elevatedScope, ...actionScopes(grantableActions)];
}
