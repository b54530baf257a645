// A client-side DPoP key, as an agent or CLI would hold it, that writes
// proofs (RFC 9449 §4) – including deliberately broken ones for attack tests.
import { createHash, randomUUID } from "node:crypto";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";

export interface DpopKey {
  readonly jwk: JWK;
  /** The private half, for code that signs its own proofs (the SDK). */
  readonly privateJwk: JWK;
  readonly jkt: string;
  proof(options: {
    method: string;
    url: string;
    accessToken?: string;
    iat?: number;
    jti?: string;
    nonce?: string;
    header?: Record<string, unknown>;
  }): Promise<string>;
}

export async function createDpopKey(alg = "ES256"): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  return {
    jwk,
    privateJwk: await exportJWK(privateKey),
    jkt: await calculateJwkThumbprint(jwk, "sha256"),
    proof({ method, url, accessToken, iat, jti, nonce, header }) {
      return new SignJWT({
        htm: method,
        htu: url,
        ...(accessToken ? { ath: createHash("sha256").update(accessToken).digest("base64url") } : {}),
        ...(nonce ? { nonce } : {}),
      })
        .setProtectedHeader({ alg, typ: "dpop+jwt", jwk, ...header })
        .setIssuedAt(iat ?? Math.floor(Date.now() / 1000))
        .setJti(jti ?? randomUUID())
        .sign(privateKey);
    },
  };
}
