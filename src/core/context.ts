// What domain functions and handlers are given: dependencies as plain values,
// so a test swaps a database or a clock without touching module state.

import type { Logger } from "pino";
import type { PrismaClient } from "../../gen/prisma/client.js";
import type { SqlClient } from "../db/sql.js";
import type { AuditTrail } from "./audit.js";
import type { Clock } from "./clock.js";
import type { Config } from "./config.js";
import type { KeyPurpose } from "./key-purposes.js";
import type { RevocationFeed } from "./revocation-feed.js";
import type { RootOfTrust } from "./root-of-trust.js";

/**
 * The seam for the root of trust: the operator's root key (crypto/root-key.ts)
 * today, a hardware or cloud KMS later. Callers only seal and open, never see
 * the key.
 */
export interface KeyEncryptionProvider {
  /** Encrypts `plaintext`, binding `context` (authenticated, not stored). */
  seal(plaintext: Uint8Array, context: string): Buffer;
  /** Decrypts what `seal` produced with the same context; throws if anything differs. */
  open(sealed: Uint8Array, context: string): Buffer;
  /** A 32-byte key for one named purpose, stable for a given root key. */
  deriveKey(purpose: KeyPurpose): Buffer;
}

export interface BrokerContext {
  readonly prisma: PrismaClient;
  /** The driver itself, for the few hot-path statements (see db/database.ts). */
  readonly sql: SqlClient;
  readonly audit: AuditTrail;
  readonly clock: Clock;
  readonly log: Logger;
  readonly rootKey: KeyEncryptionProvider;
  /** Wraps and unwraps the KMS's key material (the local root key or an HSM). */
  readonly rootOfTrust: RootOfTrust;
  readonly config: Config;
  /** This instance's view of revocations; domain code publishes into it after commits. */
  readonly feed: RevocationFeed;
  /** Aborted when the broker starts shutting down; long-lived streams end on it. */
  readonly closing: AbortSignal;
}
