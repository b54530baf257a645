// Who is calling: the result of authentication, read by authorization, tenant
// scoping and audit. Later credential types (broker tokens, DPoP) produce the
// same shape, so nothing downstream changes when they arrive.

export type PrincipalKind = "person" | "agent" | "service";

/** The grant that lets a caller use private RPCs; only bootstrap gives it out. */
export const elevatedScope = "broker.admin";

/** A scope as protocol/scope.ts parses it: an action and, for target actions, a full selector. */
export interface ScopeLike {
  readonly action: string;
  readonly selector?: Readonly<Record<string, string>>;
}

/** The scopes a caller holds, with the matching rules of protocol/scope.ts (its ScopeSet is one). */
export interface HeldScopes extends Iterable<string> {
  readonly size: number;
  /** Exact (canonical) text. */
  has(text: string): boolean;
  /** Whether any held scope could authorize `action`. */
  allows(action: string): boolean;
  covers(wanted: ScopeLike): boolean;
  readonly scopes: readonly ScopeLike[];
}

export interface Caller {
  readonly principalId: string;
  readonly tenantId: string;
  readonly kind: PrincipalKind;
  /** Scopes held (canonical text), with the matching rules of scope.ts. */
  readonly scopes: HeldScopes;
  /** How the caller proved who it is, e.g. `api_key`; recorded, never secret. */
  readonly credentialType: string;
  /** Id of the credential used (an API key id, later a token `jti`). */
  readonly credentialId: string;
  /** JWK thumbprint the caller proved possession of with a DPoP proof on this call. */
  readonly dpopJkt?: string;
  /**
   * Which of its principal's application scopes (resource servers' scopes,
   * another grammar than `scopes`) the presented credential carries: `all`
   * (an API key, a client assertion), only these of one server (a user API
   * token made for it), or none when absent (broker tokens, other user API
   * tokens).
   */
  readonly applicationScopes?: ApplicationScopes;
  /**
   * When the presented credential stops working, if its issuer gave it an
   * expiry: an API key or user API token with `expiresAt`. Unset for
   * credentials without one, and for broker tokens (but those minted by a
   * credential that expires: their own `exp`), web sessions and client
   * assertions, which are short-lived by design (see
   * policy/credential-issuance.ts: nothing issued may outlive this).
   */
  readonly credentialExpiresAt?: Date;
}

export type ApplicationScopes = "all" | { readonly resourceServerId: string; readonly scopes: readonly string[] };

export function isElevated(caller: Caller): boolean {
  return caller.scopes.has(elevatedScope);
}
