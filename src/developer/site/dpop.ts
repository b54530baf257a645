// The portal's DPoP key and proofs (RFC 9449 §4.2): an ES256 key made with
// WebCrypto, non-extractable, so no script can read its private half; it
// lives as long as the page. Each call gets a fresh proof with `htm`,
// `htu` (the broker's public URL and the path, no query), `iat`, a random
// `jti`, and `ath` (base64url SHA-256 of the access token) when a DPoP-bound
// token is sent.

const encoder = new TextEncoder();
const base64url = (bytes: Uint8Array): string =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
const text64 = (text: string) => base64url(encoder.encode(text));

export interface DpopKey {
  readonly jkt: string;
  proof(method: string, url: string, accessToken?: string, nonce?: string): Promise<string>;
}

export async function sha256(text: string): Promise<string> {
  return base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text))));
}

export async function createDpopKey(): Promise<DpopKey> {
  const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
  const { kty, crv, x, y } = (await crypto.subtle.exportKey("jwk", pair.publicKey)) as JsonWebKey;
  const jwk = { crv, kty, x, y };
  // RFC 7638 thumbprint: the required members in lexicographic order.
  const jkt = await sha256(JSON.stringify({ crv, kty, x, y }));
  return {
    jkt,
    async proof(method, url, accessToken, nonce) {
      const header = text64(JSON.stringify({ typ: "dpop+jwt", alg: "ES256", jwk }));
      const payload = text64(
        JSON.stringify({
          htm: method,
          htu: url.split("?")[0]?.split("#")[0],
          iat: Math.floor(Date.now() / 1000),
          jti: crypto.randomUUID(),
          ...(accessToken ? { ath: await sha256(accessToken) } : {}),
          ...(nonce ? { nonce } : {}),
        }),
      );
      const signature = await crypto.subtle.sign(
        { name: "ECDSA", hash: "SHA-256" },
        pair.privateKey,
        encoder.encode(`${header}.${payload}`),
      );
      // WebCrypto's ECDSA signature is r‖s, the JWS form (RFC 7518 §3.4).
      return `${header}.${payload}.${base64url(new Uint8Array(signature))}`;
    },
  };
}
