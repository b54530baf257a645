// Writes the audit trail. Two ways in, one chain:
//
// - `appendInTransaction`: inside a mutation's own transaction, so the event
//   and the change commit or roll back together.
// - `append`: on its own (denied calls). Concurrent appends are group
//   committed: whoever arrives while a batch is being written joins the next
//   batch, one transaction per batch, and each caller's promise resolves only
//   once its batch is durable. Nothing is answered before it is audited.
//
// Appending locks the single chain-head row, which orders writers across all
// broker instances sharing the database.
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import { Prisma, type PrismaClient } from "../../gen/prisma/client.js";
import type { Clock } from "../clock.js";
import { GroupCommit } from "../db/group-commit.js";
import type { DomainError } from "../errors/domain-error.js";
import { type AuditBase, type AuditEntry, type ChainedAuditEvent, chainHash, genesisHash } from "./audit-chain.js";

/** A table whose rows can ride along with audit batches: one insert per batch. */
export interface BatchTable<Row> {
  insertMany(tx: Prisma.TransactionClient, rows: Row[]): Promise<unknown>;
}

/** A row that must commit with its audit event (e.g. recording an issued token). */
export interface BatchedRow<Row = unknown> {
  readonly table: BatchTable<Row>;
  readonly row: Row;
}

interface Pending {
  readonly entry: AuditEntry;
  readonly row: BatchedRow | undefined;
}

export class AuditLog {
  readonly #prisma: PrismaClient;
  readonly #key: Buffer;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #appended = new EventEmitter();
  readonly #batches: GroupCommit<Pending, undefined>;

  constructor(deps: { prisma: PrismaClient; key: Buffer; clock: Clock; log: Logger }) {
    this.#prisma = deps.prisma;
    this.#key = deps.key;
    this.#clock = deps.clock;
    this.#log = deps.log;
    this.#appended.setMaxListeners(0);
    this.#batches = new GroupCommit(
      (batch) => this.#writeBatch(batch),
      (error, events) => this.#log.error({ err: error, events }, "audit write failed"),
    );
  }

  /** Creates the chain head if this database has none yet. */
  async init(): Promise<void> {
    await this.#prisma.auditChainHead.createMany({
      data: [{ id: 1, seq: 0n, hash: genesisHash }],
      skipDuplicates: true,
    });
  }

  /** Appends within the caller's transaction; call `notify` after it commits. */
  async appendInTransaction(tx: Prisma.TransactionClient, entries: readonly AuditEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const [head] = await tx.$queryRaw<{ seq: bigint; hash: string }[]>`
      SELECT seq, hash FROM audit_chain_head WHERE id = 1 FOR UPDATE`;
    if (!head) throw new Error("audit chain head missing; AuditLog.init() was not run");
    let previous = { seq: BigInt(head.seq), hash: head.hash };
    const time = this.#clock.now();
    const events: ChainedAuditEvent[] = entries.map((entry) => {
      const unhashed = { ...entry, seq: previous.seq + 1n, time, prevHash: previous.hash };
      const event = { ...unhashed, hash: chainHash(this.#key, unhashed) };
      previous = event;
      return event;
    });
    // Plain SQL on this hot path: Prisma's query compiler plans every
    // multi-row createMany anew (its shape changes with the row count).
    const rows = events.map(
      (e) => Prisma.sql`(${e.seq}, ${e.time}, ${e.requestId}, ${e.tenantId}, ${e.actorId}, ${e.client}, ${e.action},
        ${e.target}, ${e.outcome}::audit_outcome, ${e.reason}, ${e.prevHash}, ${e.hash})`,
    );
    await tx.$executeRaw`
      WITH appended AS (
        INSERT INTO audit_event (seq, time, request_id, tenant_id, actor_id, client, action, target, outcome, reason, prev_hash, hash)
        VALUES ${Prisma.join(rows)})
      UPDATE audit_chain_head SET seq = ${previous.seq}, hash = ${previous.hash} WHERE id = 1`;
  }

  /** Runs `work` and audits it in one transaction; the entry may depend on the result. */
  async transaction<T>(
    work: (tx: Prisma.TransactionClient) => Promise<T>,
    entry: (result: T) => AuditEntry,
  ): Promise<T> {
    const result = await this.#prisma.$transaction(async (tx) => {
      const value = await work(tx);
      await this.appendInTransaction(tx, [entry(value)]);
      return value;
    }, transactionOptions);
    this.notify();
    return result;
  }

  /**
   * Appends on its own, batched with concurrent appends; resolves once
   * durable. `row`, when given, is inserted in the same batch transaction.
   */
  async append<Row>(entry: AuditEntry, row?: BatchedRow<Row>): Promise<void> {
    await this.#batches.submit({ entry, row: row as BatchedRow | undefined });
  }

  /**
   * Records a refused call, once: a refusal already in the trail (say, from
   * a handler, before the interceptor sees it) is not written again.
   */
  async denied(base: AuditBase, action: string, target: string, error: DomainError): Promise<void> {
    if (error.audited) return;
    await this.append({ ...base, action, target, outcome: "denied", reason: error.auditReason });
    error.audited = true;
  }

  /** Tells tail subscribers of this instance that events were written. */
  notify(): void {
    this.#appended.emit("appended");
  }

  /** Calls `listener` whenever this instance wrote events; returns the unsubscribe. */
  onAppended(listener: () => void): () => void {
    this.#appended.on("appended", listener);
    return () => this.#appended.off("appended", listener);
  }

  /** Stops accepting appends and waits until every queued event is written. */
  async close(): Promise<void> {
    await this.#batches.close();
  }

  async #writeBatch(batch: readonly Pending[]): Promise<undefined[]> {
    await this.#prisma.$transaction(async (tx) => {
      const rowsByTable = new Map<BatchTable<unknown>, unknown[]>();
      for (const { row } of batch) {
        if (row) rowsByTable.set(row.table, [...(rowsByTable.get(row.table) ?? []), row.row]);
      }
      for (const [table, rows] of rowsByTable) await table.insertMany(tx, rows);
      await this.appendInTransaction(
        tx,
        batch.map((p) => p.entry),
      );
    }, transactionOptions);
    this.notify();
    return batch.map(() => undefined);
  }
}

/**
 * The embedded database runs one transaction at a time, so a transaction may
 * wait its turn behind a batch; give it longer than Prisma's 2 s default.
 */
export const transactionOptions = { maxWait: 10_000, timeout: 15_000 } as const;
