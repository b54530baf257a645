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
import { createLocalJWKSet, createRemoteJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from "jose";
import { verifyDpopProof as verifyProof } from "../auth/dpop.js";
import { parseScope, ScopeSet } from "../policy/scope.js";
import { type AccessTokenClaims, verifyAccessTokenJwt } from "../tokens/jwt.js";

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
   * The broker's JWKS, when you fetch it yourself. Its keys are imported once
   * per object: when the broker's keys change, pass the new set as a new
   * object (changes made to this one are not seen).
   */
  readonly jwks?: JSONWebKeySet;
  /** Or its URL: fetched, cached, refetched on an unknown `kid` (at most every 30 s). */
  readonly jwksUri?: string;
  /** The request's DPoP proof; required when the token is DPoP-bound. */
  readonly dpop?: { readonly proof: string; readonly method: string; readonly url: string };
  /** For tests: the time to verify at. */
  readonly now?: Date;
}

const remoteSets = new Map<string, JWTVerifyGetKey>();
/**
 * A set made per call would import its key on every verification, which
 * costs about as much as the signature check itself.
 */
const localSets = new WeakMap<JSONWebKeySet, JWTVerifyGetKey>();

function keysFor(options: VerifyAccessTokenOptions): JWTVerifyGetKey {
  if (options.jwks) {
    let set = localSets.get(options.jwks);
    if (!set) {
      set = createLocalJWKSet(options.jwks);
      localSets.set(options.jwks, set);
    }
    return set;
  }
  if (!options.jwksUri) throw new TypeError("verifyAccessToken needs jwks or jwksUri");
  let set = remoteSets.get(options.jwksUri);
  if (!set) {
    set = createRemoteJWKSet(new URL(options.jwksUri), { cooldownDuration: 30_000, cacheMaxAge: 600_000 });
    remoteSets.set(options.jwksUri, set);
  }
  return set;
}

/**
 * Verifies a broker access token: signature against the JWKS, `typ at+jwt`,
 * ES256 only, issuer, audience, expiry, and for DPoP-bound tokens the proof
 * (method, URL, freshness, `ath`, key thumbprint = `cnf.jkt`). A bound token
 * without a proof is refused. Replay of proofs is yours to stop: remember
 * each proof `jti` for a minute.
 */
export async function verifyAccessToken(token: string, options: VerifyAccessTokenOptions): Promise<AccessTokenClaims> {
  const now = options.now ?? new Date();
  let claims: AccessTokenClaims;
  try {
    claims = await verifyAccessTokenJwt(token, keysFor(options), {
      issuer: options.issuer,
      audience: options.audience,
      now,
    });
  } catch (error) {
    throw new AegisTokenError("invalid_token", `access token invalid: ${(error as Error).message}`);
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
    throw new AegisTokenError("invalid_dpop_proof", (error as Error).message);
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
