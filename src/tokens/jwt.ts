// The only module that calls jose for broker access tokens. Signing and
// verification always pin the algorithm (ES256), the type (`at+jwt`, RFC
// 9068 §2.1, so an ID token or a DPoP proof is never taken for an access
// token), the issuer and the required claims. The broker and the SDK share
// `verifyAccessTokenJwt`, so resource servers check exactly what the broker does.
import { type CryptoKey, type JWTVerifyGetKey, jwtVerify, SignJWT } from "jose";

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
}

export async function signAccessToken(
  key: { kid: string; privateKey: CryptoKey },
  claims: AccessTokenClaims,
): Promise<string> {
  const { iss, sub, aud, exp, iat, jti, ...rest } = claims;
  return new SignJWT({ ...rest })
    .setProtectedHeader({ alg: accessTokenAlg, typ: accessTokenType, kid: key.kid })
    .setIssuer(iss)
    .setSubject(sub)
    .setAudience(aud)
    .setExpirationTime(exp)
    .setIssuedAt(iat)
    .setJti(jti)
    .sign(key.privateKey);
}

export interface VerifyOptions {
  readonly issuer: string;
  /** Required audience; undefined accepts any (introspection reports it instead). */
  readonly audience?: string;
  readonly now: Date;
  /** Seconds of clock skew tolerated on `exp`/`iat`. */
  readonly clockToleranceSeconds?: number;
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
  return payload as unknown as AccessTokenClaims;
}

/** Cheap shape test before any verification work: three base64url parts. */
export function looksLikeJwt(text: string): boolean {
  return text.length < 8192 && /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(text);
}
