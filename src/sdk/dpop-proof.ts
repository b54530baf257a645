// Writing DPoP proofs (RFC 9449 §4.2) on the client side: ES256 by the
// holder's private JWK, bound to the access token (`ath`) when one is sent,
// carrying the server's nonce when it asked for one.
import { createHash, randomUUID } from "node:crypto";
import { importJWK, type JWK, SignJWT } from "jose";

export async function createDpopProof(
  privateJwk: JWK,
  request: { method: string; url: string; accessToken?: string; nonce?: string },
): Promise<string> {
  const { d: _d, ...publicJwk } = privateJwk;
  return new SignJWT({
    htm: request.method,
    htu: request.url,
    ...(request.accessToken ? { ath: createHash("sha256").update(request.accessToken).digest("base64url") } : {}),
    ...(request.nonce ? { nonce: request.nonce } : {}),
  })
    .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: publicJwk })
    .setIssuedAt()
    .setJti(randomUUID())
    .sign(await importJWK(privateJwk, "ES256"));
}
