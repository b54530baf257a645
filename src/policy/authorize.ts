// The access decision for one call, from the RPC's declared policy and the
// authenticated caller. Deny by default: a missing or unspecified policy, an
// unknown authorization mode or an absent grant all refuse.
import { type Caller, isElevated } from "../core/caller.js";
import {
  type DomainError,
  dpopRequired,
  missingGrant,
  permissionDenied,
  unauthenticated,
} from "../core/errors/domain-error.js";
import { Authorization, type MethodPolicy, SenderConstraint, Visibility } from "./method-policy.js";

export function authorize(policy: MethodPolicy | undefined, caller: Caller | undefined): DomainError | undefined {
  if (!policy || policy.visibility === Visibility.UNSPECIFIED) {
    return permissionDenied("POLICY_MISSING", "this method has no access policy");
  }
  if (policy.authorization === Authorization.ANONYMOUS) {
    return policy.visibility === Visibility.PUBLIC
      ? undefined
      : permissionDenied("POLICY_INVALID", "this method has an invalid access policy");
  }
  if (!caller) return unauthenticated("no credential presented");
  if (policy.senderConstraint === SenderConstraint.DPOP && caller.dpopJkt === undefined) {
    return dpopRequired();
  }
  if (policy.senderConstraint === SenderConstraint.UNSPECIFIED) {
    return permissionDenied("POLICY_INVALID", "this method has an invalid access policy");
  }
  if (policy.visibility === Visibility.PRIVATE && !isElevated(caller)) {
    return permissionDenied("ELEVATED_GRANT_REQUIRED", "this method needs the elevated grant");
  }
  switch (policy.authorization) {
    case Authorization.SELF:
      return undefined;
    case Authorization.GRANT:
      // For target actions this says a grant with a selector exists; the
      // handler checks it covers the target once the target is known.
      return caller.scopes.allows(policy.action) ? undefined : missingGrant(policy.action);
    default:
      return permissionDenied("POLICY_INVALID", "this method has an invalid access policy");
  }
}
