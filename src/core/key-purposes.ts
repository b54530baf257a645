// Every key the broker derives from its root key, named in one place. The
// name is the HKDF info (crypto/root-key.ts): each purpose gets a key of its
// own, and changing a name (its version suffix) rotates that key alone.
export const keyPurposes = {
  /** Encrypts broker secrets at rest (signing keys). */
  rootEncryption: "aegis/root/encryption/v1",
  /** Keys the HMAC stored for API keys and user API tokens. */
  apiKeyHash: "aegis/api-key-hash/v1",
  /** Keys the HMAC stored for refresh tokens. */
  refreshTokenHash: "aegis/refresh-token-hash/v1",
  /** Keys the HMAC stored for people's one-time enrollment codes. */
  enrollmentCodeHash: "aegis/enrollment-code-hash/v1",
  /** Keys the audit chain's HMAC. */
  auditChain: "aegis/audit-chain/v1",
  /** Signs stateless DPoP nonces (RFC 9449 §8). */
  dpopNonce: "aegis/dpop-nonce/v1",
  /** Keys the hash naming an account and address in the shared sign-in backoff. */
  signInBackoffKey: "aegis/sign-in-backoff-key/v1",
} as const;

export type KeyPurpose = (typeof keyPurposes)[keyof typeof keyPurposes];
