// Writes the audit trail. Two ways in, one chain:
//
// - `appendInTransaction`: inside a mutation's own transaction, so the event
//   and the change commit or roll back together.
// - `append`: on its own (denied calls, minted tokens). Concurrent appends
//   are group committed: whoever arrives while a batch is being written joins
//   the next batch, and each caller's promise resolves only once its batch is
//   durable. Nothing is answered before it is audited.
//
// Either way an append is one statement: it moves the single chain-head row
// from the head this instance last saw to the new last event (compare and
// set) and inserts the events, and any rows riding along, only if that move
// succeeded. Another writer (an instance, a transaction) that moved the head
// first makes the move miss; the append then reads the head and links again.
// The head row's lock orders writers across all instances sharing the
// database, and a miss costs one statement, not a lost or forked event.
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import { Prisma, type PrismaClient } from "../../gen/prisma/client.js";
import type { Clock } from "../clock.js";
import { GroupCommit } from "../db/group-commit.js";
import type { DomainError } from "../errors/domain-error.js";
import { type AuditBase, type AuditEntry, type ChainedAuditEvent, chainHash, genesisHash } from "./audit-chain.js";

/**
 * A table whose rows can ride along with audit batches: inserted by the
 * batch's own statement, and only when its events are.
 */
export interface BatchTable<Row> {
  /** `table (column, …)` to insert into. */
  readonly into: string;
  /** A query yielding `rows` in those columns (say, `SELECT * FROM unnest(…)` over array parameters). */
  select(rows: readonly Row[]): Prisma.Sql;
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

interface ChainHead {
  readonly seq: bigint;
  readonly hash: string;
}

/** Misses in a row after which an append gives up (each miss means another writer made progress). */
const maxHeadMisses = 50;

export class AuditLog {
  readonly #prisma: PrismaClient;
  readonly #key: Buffer;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #appended = new EventEmitter();
  readonly #batches: GroupCommit<Pending, undefined>;
  /** The head as this instance last wrote or read it: a guess the append's compare and set checks. */
  #head: ChainHead | undefined;

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
    await this.#appendChained(tx, entries, []);
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
    const rowsByTable = new Map<BatchTable<unknown>, unknown[]>();
    for (const { row } of batch) {
      if (!row) continue;
      const rows = rowsByTable.get(row.table);
      if (rows) rows.push(row.row);
      else rowsByTable.set(row.table, [row.row]);
    }
    await this.#appendChained(
      this.#prisma,
      batch.map((p) => p.entry),
      [...rowsByTable],
    );
    this.notify();
    return batch.map(() => undefined);
  }

  /** Links `entries` to the head and writes them (and `riders`) in one statement; see the top of this file. */
  async #appendChained(
    db: PrismaClient | Prisma.TransactionClient,
    entries: readonly AuditEntry[],
    riders: readonly [BatchTable<unknown>, unknown[]][],
  ): Promise<void> {
    if (entries.length === 0) return;
    for (let misses = 0; ; misses++) {
      const head = this.#head ?? (await this.#readHead(db));
      const time = this.#clock.now();
      let previous = head;
      const events: ChainedAuditEvent[] = entries.map((entry) => {
        const unhashed = { ...entry, seq: previous.seq + 1n, time, prevHash: previous.hash };
        const event = { ...unhashed, hash: chainHash(this.#key, unhashed) };
        previous = event;
        return event;
      });
      const [result] = await db.$queryRaw<{ moved: number }[]>(appendStatement(head, previous, time, events, riders));
      if (result?.moved === 1) {
        this.#head = { seq: previous.seq, hash: previous.hash };
        return;
      }
      this.#head = undefined;
      if (misses === maxHeadMisses) throw new Error(`audit chain head moved under ${maxHeadMisses} appends in a row`);
    }
  }

  async #readHead(db: PrismaClient | Prisma.TransactionClient): Promise<ChainHead> {
    const [head] = await db.$queryRaw<{ seq: bigint; hash: string }[]>`
      SELECT seq, hash FROM audit_chain_head WHERE id = 1`;
    if (!head) throw new Error("audit chain head missing; AuditLog.init() was not run");
    return { seq: BigInt(head.seq), hash: head.hash };
  }
}

/**
 * Moves the head from `from` to `to` and inserts the events and riders, all
 * or nothing, in one statement. Arrays (`unnest`) keep the statement's text
 * the same for every batch size, which keeps parsing it cheap.
 */
function appendStatement(
  from: ChainHead,
  to: ChainHead,
  time: Date,
  events: readonly ChainedAuditEvent[],
  riders: readonly [BatchTable<unknown>, unknown[]][],
): Prisma.Sql {
  const column = (pick: (event: ChainedAuditEvent) => string | null) => events.map(pick);
  const rides = riders.map(
    ([table, rows], i) => Prisma.sql`,
    ride${Prisma.raw(String(i))} AS (
      INSERT INTO ${Prisma.raw(table.into)}
      SELECT * FROM (${table.select(rows)}) AS r WHERE EXISTS (SELECT 1 FROM head))`,
  );
  return Prisma.sql`
    WITH head AS (
      UPDATE audit_chain_head SET seq = ${to.seq}, hash = ${to.hash}
       WHERE id = 1 AND seq = ${from.seq} AND hash = ${from.hash}
      RETURNING 1),
    appended AS (
      INSERT INTO audit_event (seq, time, request_id, tenant_id, actor_id, client, action, target, outcome, reason, prev_hash, hash)
      SELECT e.seq, ${time}::timestamptz, e.request_id, e.tenant_id, e.actor_id, e.client, e.action, e.target,
             e.outcome::audit_outcome, e.reason, e.prev_hash, e.hash
        FROM unnest(${column((e) => e.seq.toString())}::bigint[], ${column((e) => e.requestId)}::text[],
                    ${column((e) => e.tenantId)}::text[], ${column((e) => e.actorId)}::text[],
                    ${column((e) => e.client)}::text[], ${column((e) => e.action)}::text[],
                    ${column((e) => e.target)}::text[], ${column((e) => e.outcome)}::text[],
                    ${column((e) => e.reason)}::text[], ${column((e) => e.prevHash)}::text[],
                    ${column((e) => e.hash)}::text[])
          AS e(seq, request_id, tenant_id, actor_id, client, action, target, outcome, reason, prev_hash, hash)
       WHERE EXISTS (SELECT 1 FROM head))${rides.length > 0 ? Prisma.join(rides, "") : Prisma.empty}
    SELECT count(*)::int AS moved FROM head`;
}

/**
 * The embedded database runs one transaction at a time, so a transaction may
 * wait its turn behind a batch; give it longer than Prisma's 2 s default.
 */
export const transactionOptions = { maxWait: 10_000, timeout: 15_000 } as const;
