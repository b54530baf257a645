// Who is calling: the result of authentication, read by authorization, tenant
// scoping and audit. Later credential types (broker tokens, DPoP) produce the
// same shape, so nothing downstream changes when they arrive.
import type { ScopeSet } from "../protocol/scope.js";

export type PrincipalKind = "person" | "agent" | "service";

/** The grant that lets a caller use private RPCs; only bootstrap gives it out. */
export const elevatedScope = "broker.admin";

export interface Caller {
  readonly principalId: string;
  readonly tenantId: string;
  readonly kind: PrincipalKind;
  /** Scopes held (canonical text), with the matching rules of scope.ts. */
  readonly scopes: ScopeSet;
  /** How the caller proved who it is, e.g. `api_key`; recorded, never secret. */
  readonly credentialType: string;
  /** Id of the credential used (an API key id, later a token `jti`). */
  readonly credentialId: string;
  /** JWK thumbprint the caller proved possession of with a DPoP proof on this call. */
  readonly dpopJkt?: string;
}

export function isElevated(caller: Caller): boolean {
  return caller.scopes.has(elevatedScope);
}
