// Sealing and opening credentials on the owner's and the agent's machines.
// The broker only ever sees the sealed form.
import { type CryptoKey, flattenedDecrypt, GeneralEncrypt, generalDecrypt, importJWK, type JWK } from "jose";

const alg = "ECDH-ES+A256KW";
const enc = "A256GCM";

export interface SealingRecipient {
  /** The key id the broker registered the public key under (`kid_…`). */
  readonly kid: string;
  /** The recipient's public encryption key (X25519 or P-256). */
  readonly jwk: JWK;
}

/**
 * Seals `secret` for every recipient: one JWE (general JSON serialization)
 * with `ECDH-ES+A256KW` per recipient and `A256GCM` content encryption, as
 * `CredentialService.RegisterCredential` accepts.
 */
export async function sealCredential(secret: string, recipients: readonly SealingRecipient[]): Promise<string> {
  if (recipients.length === 0) throw new TypeError("seal for at least one recipient");
  const sealing = new GeneralEncrypt(new TextEncoder().encode(secret)).setProtectedHeader({ enc });
  for (const recipient of recipients) {
    if ("d" in recipient.jwk)
      throw new TypeError(`recipient ${recipient.kid}: pass the public key, not the private one`);
    sealing
      .addRecipient(await importJWK(stripMeta(recipient.jwk), alg))
      .setUnprotectedHeader({ alg, kid: recipient.kid });
  }
  return JSON.stringify(await sealing.encrypt());
}

/**
 * Opens a sealed credential with the recipient's private key: the flattened
 * JWE `RedeemLease` returns, or the general JWE (then any recipient the key
 * opens). Only `ECDH-ES+A256KW` / `A256GCM` are accepted.
 */
export async function openSealedCredential(sealed: string, privateKey: JWK | CryptoKey): Promise<string> {
  const jwe = JSON.parse(sealed) as Record<string, unknown>;
  const key = "kty" in privateKey ? await importJWK(stripMeta(privateKey as JWK), alg) : privateKey;
  const options = { keyManagementAlgorithms: [alg], contentEncryptionAlgorithms: [enc] };
  const { plaintext } = Array.isArray(jwe.recipients)
    ? await generalDecrypt(jwe as never, key, options)
    : await flattenedDecrypt(jwe as never, key, options);
  return new TextDecoder().decode(plaintext);
}

function stripMeta(jwk: JWK): JWK {
  const { kid: _kid, alg: _alg, use: _use, key_ops: _ops, ...members } = jwk;
  return members;
}
