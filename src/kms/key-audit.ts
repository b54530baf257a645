// Every KMS operation, refusals and failures included, leaves one audit
// event naming actor, key, version, operation, algorithm and outcome (never
// the data), and counts in the metrics by operation and error code. The
// answer waits for the event: crypto operations append through the audit
// trail's group commit (as token mints do), lifecycle changes write theirs
// in the changing transaction.
import type { AuditBase } from "../core/audit.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError } from "../core/errors/domain-error.js";

/** The counters of src/core/metrics.ts the KMS records into. */
export interface KeyOpMetrics {
  keyOp(operation: string): void;
  keyOpFailed(operation: string, code: string): void;
}

/** What an operation learns as it goes, for its audit event. */
export interface OpNote {
  version: number;
  algorithm: string;
  /** Extra words for the event (item count, destination key); never data. */
  detail: string;
  /** A result that is a failure without being an error (a signature that does not verify). */
  failure?: string;
}

export interface OpCall {
  readonly base: AuditBase;
  /** The action audited, e.g. `kms.sign`. */
  readonly action: string;
  /** The metric's operation label, e.g. `sign`. */
  readonly operation: string;
  readonly keyId: string;
  /** The success event is written in the operation's transaction (lifecycle changes). */
  readonly auditedInTransaction?: boolean;
}

export function auditTarget(keyId: string, version: number): string {
  return (version > 0 ? `${keyId} v${version}` : keyId).slice(0, 200);
}

export function describe(operation: string, note: OpNote): string {
  return [`op=${operation}`, note.algorithm && `alg=${note.algorithm}`, note.detail]
    .filter(Boolean)
    .join(" ")
    .slice(0, 300);
}

/** Runs one operation with its audit event and metrics. */
export async function observed<T>(
  ctx: Pick<BrokerContext, "audit" | "log">,
  metrics: KeyOpMetrics,
  call: OpCall,
  work: (note: OpNote) => Promise<T>,
): Promise<T> {
  metrics.keyOp(call.operation);
  const note: OpNote = { version: 0, algorithm: "", detail: "" };
  let result: T;
  try {
    result = await work(note);
  } catch (error) {
    const domain = error instanceof DomainError ? error : undefined;
    metrics.keyOpFailed(call.operation, domain?.code ?? "internal");
    if (!domain?.audited) {
      await ctx.audit.append({
        ...call.base,
        action: call.action,
        target: auditTarget(call.keyId, note.version),
        outcome: "denied",
        reason: `${domain ? domain.auditReason : "INTERNAL"}; ${describe(call.operation, note)}`.slice(0, 500),
      });
      if (domain) domain.audited = true;
    }
    throw error;
  }
  if (note.failure) metrics.keyOpFailed(call.operation, note.failure);
  if (!call.auditedInTransaction || note.failure) {
    await ctx.audit.append({
      ...call.base,
      action: call.action,
      target: auditTarget(call.keyId, note.version),
      outcome: note.failure ? "denied" : "success",
      reason: `${note.failure ? `${note.failure.toUpperCase()}; ` : ""}${describe(call.operation, note)}`,
    });
  }
  return result;
}
