// Aegis SDK for resource servers: verify broker tokens offline against the
// broker's JWKS, check scopes, check DPoP proofs, or ask the broker to
// introspect. It runs exactly the checks the broker runs (same modules).
//
//   import { verifyAccessToken, requireScopes } from "aegis-broker/sdk";
//   const claims = await verifyAccessToken(token, {
//     issuer: "https://aegis.example.com",
//     audience: "https://api.example.com",
//     jwksUri: "https://aegis.example.com/.well-known/jwks.json",
//   });
//   requireScopes(claims, ["reports.read"]);
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from "jose";
import { type AccessTokenClaims, verifyAccessTokenJwt } from "../protocol/access-token.js";
import { DpopProofError, verifyDpopProof as verifyProof } from "../protocol/dpop.js";
import { parseScope, ScopeSet } from "../protocol/scope.js";
import { JwksCache } from "./jwks-cache.js";

export { AegisCallError, type AgentCredentials, mintAgentToken, redeemLease } from "./agent.js";
export { createDpopProof } from "./dpop-proof.js";
export { openSealedCredential, type SealingRecipient, sealCredential } from "./sealed-credential.js";
export type { AccessTokenClaims };

export type AegisTokenErrorCode = "invalid_token" | "insufficient_scope" | "invalid_dpop_proof";

/** Every SDK failure; `code` is what to put in `WWW-Authenticate: ... error="<code>"`. */
export class AegisTokenError extends Error {
  override name = "AegisTokenError";
  constructor(
    readonly code: AegisTokenErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface VerifyAccessTokenOptions {
  /** The broker's URL, as in its tokens' `iss`. */
  readonly issuer: string;
  /** Your API's identifier: tokens for anything else are refused. */
  readonly audience: string;
  /**
   * Your tenant's id (`tenant_id`), to refuse tokens of any other tenant too.
   * Identifiers are unique across a broker's tenants, but one whose server
   * was deleted can be registered again by another tenant, whose tokens for
   * it would then pass the audience check alone.
   */
  readonly tenantId?: string;
  /**
   * The broker's JWKS, when you fetch it yourself. Its keys are imported once
   * per object: when the broker's keys change, pass the new set as a new
   * object (changes made to this one are not seen).
   */
  readonly jwks?: JSONWebKeySet;
  /**
   * Or its URL. The set fetched is used for as long as the response's
   * `Cache-Control: max-age` says (the broker sends 60 s; 60 s when absent;
   * kept within 30 s to 600 s), then fetched again before the next
   * verification. So a key the broker retires
   * (`RetireSigningKey`) stops being accepted by a running verifier within
   * that max-age: 60 s. A token with an unknown `kid` refetches at most every
   * 30 s. If a stale set cannot be fetched again, every token is refused
   * (`invalid_token`) until a fetch succeeds: no stale keys, no grace.
   * Freshness is judged at `now` when it is given.
   */
  readonly jwksUri?: string;
  /** The request's DPoP proof; required when the token is DPoP-bound. */
  readonly dpop?: { readonly proof: string; readonly method: string; readonly url: string };
  /** For tests: the time to verify at (expiry, DPoP freshness, the age of a cached JWKS). */
  readonly now?: Date;
}

const remoteSets = new Map<string, JwksCache>();
/**
 * A set made per call would import its key on every verification, which
 * costs about as much as the signature check itself.
 */
const localSets = new WeakMap<JSONWebKeySet, JWTVerifyGetKey>();

function keysFor(options: VerifyAccessTokenOptions, now: Date): JWTVerifyGetKey {
  if (options.jwks) {
    let set = localSets.get(options.jwks);
    if (!set) {
      set = createLocalJWKSet(options.jwks);
      localSets.set(options.jwks, set);
    }
    return set;
  }
  if (!options.jwksUri) throw new TypeError("verifyAccessToken needs jwks or jwksUri");
  let cache = remoteSets.get(options.jwksUri);
  if (!cache) {
    cache = new JwksCache(options.jwksUri);
    remoteSets.set(options.jwksUri, cache);
  }
  return cache.keysAt(now.getTime());
}

/**
 * Verifies a broker access token: signature against the JWKS, `typ at+jwt`,
 * ES256 only, issuer, audience, expiry, the tenant when `tenantId` is
 * given, and for DPoP-bound tokens the proof
 * (method, URL, freshness, `ath`, key thumbprint = `cnf.jkt`). A bound token
 * without a proof is refused. Replay of proofs is yours to stop: remember
 * each proof `jti` for a minute.
 */
export async function verifyAccessToken(token: string, options: VerifyAccessTokenOptions): Promise<AccessTokenClaims> {
  const now = options.now ?? new Date();
  let claims: AccessTokenClaims;
  try {
    claims = await verifyAccessTokenJwt(token, keysFor(options, now), {
      issuer: options.issuer,
      audience: options.audience,
      now,
    });
  } catch (error) {
    throw new AegisTokenError("invalid_token", `access token invalid: ${(error as Error).message}`);
  }
  if (options.tenantId !== undefined && claims.tenant_id !== options.tenantId) {
    throw new AegisTokenError("invalid_token", "access token is for another tenant");
  }
  if (claims.cnf?.jkt) {
    if (!options.dpop) throw new AegisTokenError("invalid_token", "DPoP-bound token presented without a DPoP proof");
    const proof = await verifyDpopProof({ ...options.dpop, accessToken: token, now });
    if (proof.jkt !== claims.cnf.jkt)
      throw new AegisTokenError("invalid_dpop_proof", "proof key does not match cnf.jkt");
  }
  return claims;
}

/**
 * Throws `insufficient_scope` unless the token's scopes cover every one of
 * `scopes` (same matching as the broker: a grant's `*` covers any value).
 */
export function requireScopes(claims: Pick<AccessTokenClaims, "scope">, scopes: readonly string[]): void {
  const held = new ScopeSet(claims.scope.split(" ").filter(Boolean));
  const missing = scopes.filter((s) => {
    try {
      return !held.covers(parseScope(s, { wildcards: true }));
    } catch {
      return true;
    }
  });
  if (missing.length > 0) throw new AegisTokenError("insufficient_scope", `missing scopes: ${missing.join(" ")}`);
}

/** Verifies a DPoP proof (RFC 9449) for a request; returns the key thumbprint. */
export async function verifyDpopProof(check: {
  proof: string;
  method: string;
  url: string;
  accessToken?: string;
  now?: Date;
}): Promise<{ jkt: string; jti: string }> {
  try {
    return await verifyProof({ ...check, now: check.now ?? new Date() });
  } catch (error) {
    // The precise check that refused it (protocol/dpop.ts), not a vague "invalid".
    const code = error instanceof DpopProofError ? `${error.code}: ` : "";
    throw new AegisTokenError("invalid_dpop_proof", `${code}${(error as Error).message}`);
  }
}

/** RFC 7662 introspection at the broker; `credential` is your API key or token with `introspect.token`. */
export async function introspect(options: {
  brokerUrl: string;
  token: string;
  credential: string;
}): Promise<{ active: boolean } & Partial<AccessTokenClaims>> {
  const response = await fetch(`${options.brokerUrl.replace(/\/$/, "")}/oauth/introspect`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Bearer ${options.credential}` },
    body: new URLSearchParams({ token: options.token }),
  });
  if (!response.ok) throw new Error(`introspection failed with HTTP ${response.status}`);
  return (await response.json()) as { active: boolean } & Partial<AccessTokenClaims>;
}
