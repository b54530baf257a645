// What domain functions and handlers are given: dependencies as plain values,
// so a test swaps a database or a clock without touching module state.
import type { Logger } from "pino";
import type { PrismaClient } from "../../gen/prisma/client.js";
import type { AuditLog } from "../audit/audit-log.js";
import type { KeyEncryptionProvider } from "../crypto/root-key.js";
import type { SqlClient } from "../db/database.js";
import type { Clock } from "./clock.js";
import type { Config } from "./config.js";
import type { RevocationFeed } from "./revocation-feed.js";

export interface BrokerContext {
  readonly prisma: PrismaClient;
  /** The driver itself, for the few hot-path statements (see db/database.ts). */
  readonly sql: SqlClient;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly log: Logger;
  readonly rootKey: KeyEncryptionProvider;
  readonly config: Config;
  /** This instance's view of revocations; domain code publishes into it after commits. */
  readonly feed: RevocationFeed;
  /** Aborted when the broker starts shutting down; long-lived streams end on it. */
  readonly closing: AbortSignal;
}
