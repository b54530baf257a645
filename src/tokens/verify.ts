// Verifying broker tokens offline (key ring + revocation feed, no database
// round trip), introspection (RFC 7662), and the authenticator for calls
// that present a broker token (Bearer, or DPoP when bound).
import type { Authenticator } from "../auth/authenticate.js";
import { checkDpop } from "../auth/dpop-check.js";
import { type Caller, isElevated } from "../core/caller.js";
import { invalidDpopProof, missingGrant, unauthenticated } from "../core/errors/domain-error.js";
import { scopeSetOf } from "../policy/scope-checks.js";
import { type AccessTokenClaims, looksLikeJwt, verifyAccessTokenJwt } from "../protocol/access-token.js";
import { resourceServerOfPrincipal } from "../resource-servers/index.js";
import { clockToleranceSeconds, type TokenDeps } from "./token-deps.js";

/** Verifies a broker token offline; throws `unauthenticated` with the precise reason as detail. */
async function verifyToken(
  deps: Pick<TokenDeps, "keyRing" | "feed" | "clock" | "config" | "verified">,
  token: string,
  audience: string | undefined,
): Promise<AccessTokenClaims> {
  const now = deps.clock.now();
  const version = deps.keyRing.version;
  let claims = deps.verified.get(token, version);
  if (claims) {
    if ((claims.exp + clockToleranceSeconds) * 1000 <= now.getTime()) throw unauthenticated("access token expired");
    if (audience !== undefined && claims.aud !== audience) throw unauthenticated("access token audience mismatch");
  } else {
    try {
      claims = await verifyAccessTokenJwt(token, deps.keyRing.lookup, {
        issuer: deps.config.publicUrl,
        ...(audience === undefined ? {} : { audience }),
        now,
        clockToleranceSeconds,
        maxLifetimeSeconds: deps.config.tokenLifetime.maxSeconds,
      });
    } catch (error) {
      throw unauthenticated(`access token invalid: ${(error as Error).message}`);
    }
    deps.verified.set(token, version, claims);
  }
  const revoked = deps.feed.revocationOf(claims);
  if (revoked) throw unauthenticated(revoked);
  return claims;
}

/**
 * Who may introspect, and which tokens: a holder of `introspect.token` any
 * token of its tenant; a registered resource server's own principal the
 * tokens issued for it (RFC 7662 §4: the token's audience); nobody else.
 */
async function introspectionScope(
  deps: TokenDeps,
  caller: Caller,
): Promise<{ readonly audience?: string; readonly anyTenant: boolean }> {
  if (caller.scopes.allows(introspectAction)) return { anyTenant: isElevated(caller) };
  const server = await resourceServerOfPrincipal(deps.prisma, caller.principalId);
  if (!server || server.tenantId !== caller.tenantId) throw missingGrant(introspectAction);
  return { audience: server.identifier, anyTenant: false };
}

const introspectAction = "introspect.token";

/** RFC 7662: the claims of an active token the caller may see, else undefined. */
export async function introspectToken(deps: TokenDeps, caller: Caller, token: string) {
  const allowed = await introspectionScope(deps, caller);
  if (token.length > 8192) return undefined;
  let claims: AccessTokenClaims;
  try {
    claims = await verifyToken(deps, token, undefined);
  } catch {
    return undefined;
  }
  // A resource server sees its own tenant's tokens only, and its own audience's when it is one.
  if (claims.tenant_id !== caller.tenantId && !allowed.anyTenant) return undefined;
  if (allowed.audience !== undefined && claims.aud !== allowed.audience) return undefined;
  return claims;
}

/** Authenticates calls that present a broker token (Bearer, or DPoP when bound). */
export function tokenAuthenticator(deps: TokenDeps): Authenticator {
  return {
    async authenticate({ bearer, scheme, headers, method, url }) {
      if (!bearer || bearer.startsWith("aegis_")) return undefined;
      if (!looksLikeJwt(bearer)) return undefined;
      const claims = await verifyToken(deps, bearer, deps.config.publicUrl);
      let dpopJkt: string | undefined;
      if (claims.cnf?.jkt) {
        // RFC 9449 §7.1: a bound token is only accepted with the DPoP scheme and a proof.
        if (scheme !== "dpop") throw unauthenticated("DPoP-bound token presented as a Bearer token");
        const proof = headers.get("dpop");
        if (!proof) throw unauthenticated("DPoP-bound token presented without a DPoP proof");
        dpopJkt = await checkDpop(deps, proof, { method, url }, bearer);
        if (dpopJkt !== claims.cnf.jkt) throw invalidDpopProof("proof key does not match the token's cnf.jkt");
      } else if (scheme === "dpop") {
        throw unauthenticated("DPoP scheme used with a token that is not DPoP-bound");
      }
      // A broker token is a short-lived session by design: what it issues is
      // bounded by the issuance rules' coverage only (policy/credential-
      // issuance.ts), so a person signed in with one may still make a key
      // that lasts. Unless a credential that expires minted it
      // (`aegis_bounded`): then nothing it issues outlives its `exp`, or it
      // would be a step around the expiring credential's own bound.
      return {
        principalId: claims.sub,
        tenantId: claims.tenant_id,
        kind: claims.principal_kind as Caller["kind"],
        scopes: scopeSetOf(claims.scope),
        credentialType: "access_token",
        credentialId: claims.jti,
        ...(claims.aegis_bounded === true ? { credentialExpiresAt: new Date(claims.exp * 1000) } : {}),
        ...(dpopJkt ? { dpopJkt } : {}),
      };
    },
  };
}
