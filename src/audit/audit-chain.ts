// The audit hash chain. Each event's hash is an HMAC (key derived from the
// root key) over its fields and the previous event's hash. A plain hash would
// let anyone with write access to the database rewrite history and recompute
// the chain; with a keyed hash they also need the root key.
import { createHmac } from "node:crypto";
import type { AuditEntry } from "../core/audit.js";
import { sameSecret } from "../crypto/constant-time.js";

export interface ChainedAuditEvent extends AuditEntry {
  readonly seq: bigint;
  readonly time: Date;
  readonly prevHash: string;
  readonly hash: string;
}

export const genesisHash = "0".repeat(64);

export function chainHash(key: Buffer, event: Omit<ChainedAuditEvent, "hash">): string {
  // A JSON array fixes field order and escapes separators unambiguously.
  const fields = [
    "aegis-audit-v1",
    event.seq.toString(),
    event.time.toISOString(),
    event.requestId,
    event.tenantId ?? "",
    event.actorId ?? "",
    event.client,
    event.action,
    event.target,
    event.outcome,
    event.reason,
    event.prevHash,
  ];
  return createHmac("sha256", key).update(JSON.stringify(fields)).digest("hex");
}

export interface ChainVerdict {
  readonly intact: boolean;
  readonly eventsChecked: bigint;
  readonly firstBadSeq: bigint;
  readonly problem: string;
}

/**
 * Checks events in seq order against their hashes and links, continuing from
 * `previous` (the last event of the previous batch, or the chain start).
 * Returns the first problem found, or undefined when this batch is sound.
 */
export function findChainBreak(
  key: Buffer,
  events: readonly ChainedAuditEvent[],
  previous: { seq: bigint; hash: string },
): { seq: bigint; problem: string } | undefined {
  let expected = previous;
  for (const event of events) {
    if (event.seq !== expected.seq + 1n) {
      return { seq: expected.seq + 1n, problem: `event ${expected.seq + 1n} is missing` };
    }
    if (event.prevHash !== expected.hash) {
      return { seq: event.seq, problem: "does not link to the event before it" };
    }
    if (!sameHex(chainHash(key, event), event.hash)) {
      return { seq: event.seq, problem: "content does not match its hash (modified)" };
    }
    expected = event;
  }
  return undefined;
}

function sameHex(a: string, b: string): boolean {
  return sameSecret(a, b);
}
