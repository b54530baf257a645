// Broker access tokens, signed and verified in this module only. Both pin
// the algorithm (ES256), the type (`at+jwt`, RFC 9068 §2.1, so an ID token or
// a DPoP proof is never taken for an access token), the issuer and the
// required claims. The broker and the SDK share `verifyAccessTokenJwt`, so
// resource servers check exactly what the broker does.
import { type KeyObject, sign } from "node:crypto";
import { type JWTVerifyGetKey, jwtVerify } from "jose";

export const accessTokenAlg = "ES256";
export const accessTokenType = "at+jwt";

export interface AccessTokenClaims {
  readonly iss: string;
  readonly sub: string;
  readonly aud: string;
  readonly exp: number;
  readonly iat: number;
  readonly jti: string;
  readonly client_id: string;
  readonly tenant_id: string;
  /** Space-separated scopes (RFC 9068 §2.2.3). */
  readonly scope: string;
  readonly principal_kind: string;
  readonly cnf?: { readonly jkt: string };
  /**
   * Set (true) when the credential that minted the token expires
   * (policy/credential-issuance.ts): the token then issues nothing that
   * outlives its own `exp`, so it is no step around that rule.
   */
  readonly aegis_bounded?: true;
}

/**
 * Signs with node:crypto rather than jose: a compact JWS of our own claims is
 * three base64url parts (RFC 7515 §7.1), and jose on Node signs through
 * WebCrypto, which costs ~175 µs of CPU per token against ~35 µs here
 * (measured on the bench host). What makes JWTs risky is verifying them; that
 * stays with jose below. Tests check that jose, the SDK and an independent
 * OAuth client accept what this signs.
 */
export function signAccessToken(key: { kid: string; privateKey: KeyObject }, claims: AccessTokenClaims): string {
  const header = Buffer.from(JSON.stringify({ alg: accessTokenAlg, typ: accessTokenType, kid: key.kid }));
  const input = `${header.toString("base64url")}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
  // ES256 signatures in JWS are r || s, 32 bytes each (RFC 7518 §3.4), not DER.
  const signature = sign("sha256", Buffer.from(input), { key: key.privateKey, dsaEncoding: "ieee-p1363" });
  return `${input}.${signature.toString("base64url")}`;
}

export interface VerifyOptions {
  readonly issuer: string;
  /** Required audience; undefined accepts any (introspection reports it instead). */
  readonly audience?: string;
  readonly now: Date;
  /** Seconds of clock skew tolerated on `exp`/`iat`. */
  readonly clockToleranceSeconds?: number;
  /**
   * Longest lifetime (`exp - iat`) a token may claim. The broker passes its
   * configured maximum: a token claiming more was not minted under this
   * configuration (a leaked or misused signing key), whoever signed it.
   */
  readonly maxLifetimeSeconds?: number;
}

/** Verifies signature, type, algorithm and registered claims; throws on any failure. */
export async function verifyAccessTokenJwt(
  token: string,
  keys: JWTVerifyGetKey,
  options: VerifyOptions,
): Promise<AccessTokenClaims> {
  const { payload } = await jwtVerify(token, keys, {
    algorithms: [accessTokenAlg],
    typ: accessTokenType,
    issuer: options.issuer,
    ...(options.audience === undefined ? {} : { audience: options.audience }),
    currentDate: options.now,
    clockTolerance: options.clockToleranceSeconds ?? 5,
    requiredClaims: ["iss", "sub", "aud", "exp", "iat", "jti"],
  });
  if (typeof payload.scope !== "string" || typeof payload.tenant_id !== "string" || typeof payload.aud !== "string") {
    throw new Error("access token lacks scope, tenant_id or a single aud");
  }
  // jose checks `iat` only with maxTokenAge; a token from the future is refused here.
  const iat = payload.iat as number;
  const exp = payload.exp as number;
  const now = Math.floor(options.now.getTime() / 1000);
  if (iat > now + (options.clockToleranceSeconds ?? 5)) throw new Error("access token iat is in the future");
  if (exp <= iat) throw new Error("access token expires before it was issued");
  if (options.maxLifetimeSeconds !== undefined && exp - iat > options.maxLifetimeSeconds) {
    throw new Error(`access token lifetime ${exp - iat} s exceeds the maximum of ${options.maxLifetimeSeconds} s`);
  }
  return payload as unknown as AccessTokenClaims;
}

/** Cheap shape test before any verification work: three base64url parts. */
export function looksLikeJwt(text: string): boolean {
  return text.length < 8192 && /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(text);
}
