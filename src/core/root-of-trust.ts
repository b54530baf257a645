// Where the key material of the broker's KMS is wrapped: the operator's local
// root key, or a key that never leaves an HSM (PKCS#11). Domain code sees
// only this interface, so a cloud KMS can take either's place: it wraps and
// unwraps material, binding a context, and never hands out its own key.

export interface RootOfTrust {
  /** A short name for logs and health: "local", "pkcs11". */
  readonly kind: string;
  /** Encrypts key material, binding `context` (authenticated, not stored). */
  wrap(material: Uint8Array, context: string): Promise<Uint8Array>;
  /** Decrypts what `wrap` produced with the same context; rejects if anything differs. */
  unwrap(wrapped: Uint8Array, context: string): Promise<Uint8Array>;
  /** Releases the session (an HSM's); called once at shutdown. */
  close(): Promise<void>;
}
