// What the audit trail records and the one interface domain code writes it
// through (audit/audit-log.ts implements it: hash-chained, group-committed,
// written in the same transaction as the change it records).
import type { Prisma } from "../../gen/prisma/client.js";
import type { SqlQuery } from "../db/sql.js";
import type { DomainError } from "./errors/domain-error.js";

export type AuditOutcome = "success" | "denied";

/** What callers say about an attempt; the writer adds seq, time and hashes. */
export interface AuditEntry {
  readonly requestId: string;
  readonly tenantId: string | null;
  readonly actorId: string | null;
  readonly client: string;
  readonly action: string;
  readonly target: string;
  readonly outcome: AuditOutcome;
  readonly reason: string;
}

/** The part of an entry that comes from the call: who, from where, which request. */
export type AuditBase = Pick<AuditEntry, "requestId" | "tenantId" | "actorId" | "client">;

/** The audit trail as domain code and the pipeline use it: nothing happens unaudited. */
export interface AuditTrail {
  /** Appends on its own, batched with concurrent appends; resolves once durable. */
  append(entry: AuditEntry): Promise<void>;
  /** Records a refused call, once (a refusal already in the trail is not written again). */
  denied(base: AuditBase, action: string, target: string, error: DomainError): Promise<void>;
  /** Runs `work` and audits it in one transaction; the entry may depend on the result. */
  transaction<T>(work: (tx: Prisma.TransactionClient) => Promise<T>, entry: (result: T) => AuditEntry): Promise<T>;
  /** Appends within the caller's transaction; call `notify` after it commits. */
  appendInTransaction(tx: Prisma.TransactionClient | SqlQuery, entries: readonly AuditEntry[]): Promise<void>;
  /** Tells tail subscribers of this instance that events were written. */
  notify(): void;
  /** Calls `listener` whenever this instance wrote events; returns the unsubscribe. */
  onAppended(listener: () => void): () => void;
}
