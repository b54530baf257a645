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
// set) and inserts the events only if that move succeeded. Another writer
// (an instance, a transaction) that moved the head first makes the move miss;
// the append then reads the head and links again. A miss costs a statement,
// not a lost or forked event. Should it miss again (other writers keep
// moving the head in between: two busy brokers starved one another that
// way, 50 misses in a row), it locks the head row for its transaction and
// links to it, which cannot miss. The head row's lock orders writers across
// all instances sharing the database.
import { EventEmitter } from "node:events";
import { ATTR_DB_SYSTEM_NAME, DB_SYSTEM_NAME_VALUE_POSTGRESQL } from "@opentelemetry/semantic-conventions";
import type { Logger } from "pino";
import type { Prisma, PrismaClient } from "../../gen/prisma/client.js";
import type { AuditBase, AuditEntry, AuditTrail } from "../core/audit.js";
import type { Clock } from "../core/clock.js";
import type { DomainError } from "../core/errors/domain-error.js";
import type { Tracing } from "../core/tracing.js";
import { type SqlClient, type SqlQuery, sqlOf } from "../db/database.js";
import { type BatchObserver, GroupCommit } from "../db/group-commit.js";
import { type ChainedAuditEvent, chainHash, genesisHash } from "./audit-chain.js";

interface ChainHead {
  readonly seq: bigint;
  readonly hash: string;
}

/** Attributes of the database spans (OTel database conventions). */
const dbSpan = { [ATTR_DB_SYSTEM_NAME]: DB_SYSTEM_NAME_VALUE_POSTGRESQL };

/** Compare-and-set attempts before an append locks the head instead. */
const optimisticAttempts = 2;

export class AuditLog implements AuditTrail {
  readonly #prisma: PrismaClient;
  readonly #sql: SqlClient;
  readonly #key: Buffer;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #appended = new EventEmitter();
  readonly #batches: GroupCommit<AuditEntry, undefined>;
  readonly #tracing: Tracing | undefined;
  /** The head as this instance last wrote or read it: a guess the append's compare and set checks. */
  #head: ChainHead | undefined;

  constructor(deps: {
    prisma: PrismaClient;
    sql: SqlClient;
    key: Buffer;
    clock: Clock;
    log: Logger;
    /** Told of every batch of appends (metrics). */
    batches?: BatchObserver;
    /** Traces appends and audited transactions as child spans of their calls. */
    tracing?: Tracing;
  }) {
    this.#prisma = deps.prisma;
    this.#sql = deps.sql;
    this.#key = deps.key;
    this.#clock = deps.clock;
    this.#log = deps.log;
    this.#appended.setMaxListeners(0);
    this.#tracing = deps.tracing;
    this.#batches = new GroupCommit(
      (batch) => this.#writeBatch(batch),
      (error, events) => this.#log.error({ err: error, events }, "audit write failed"),
      deps.batches,
      deps.tracing?.groupCommit("audit", dbSpan),
    );
  }

  /** Creates the chain head if this database has none yet. */
  async init(): Promise<void> {
    await this.#prisma.auditChainHead.createMany({
      data: [{ id: 1, seq: 0n, hash: genesisHash }],
      skipDuplicates: true,
    });
  }

  /** Appends within the caller's transaction (Prisma's or the driver's); call `notify` after it commits. */
  async appendInTransaction(tx: Prisma.TransactionClient | SqlQuery, entries: readonly AuditEntry[]): Promise<void> {
    await this.#appendChained(sqlOf(tx), entries, true);
  }

  /** Runs `work` and audits it in one transaction; the entry may depend on the result. */
  async transaction<T>(
    work: (tx: Prisma.TransactionClient) => Promise<T>,
    entry: (result: T) => AuditEntry,
  ): Promise<T> {
    const run = () =>
      this.#prisma.$transaction(async (tx) => {
        const value = await work(tx);
        await this.appendInTransaction(tx, [entry(value)]);
        return value;
      }, transactionOptions);
    const result = await (this.#tracing ? this.#tracing.child("db transaction", dbSpan, run) : run());
    this.notify();
    return result;
  }

  /** Appends on its own, batched with concurrent appends; resolves once durable. */
  async append(entry: AuditEntry): Promise<void> {
    await this.#batches.submit(entry);
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

  async #writeBatch(batch: readonly AuditEntry[]): Promise<undefined[]> {
    await this.#appendChained(this.#sql, batch, false);
    this.notify();
    return batch.map(() => undefined);
  }

  /** Links `entries` to the head and writes them; see the top of this file. */
  async #appendChained(db: SqlQuery, entries: readonly AuditEntry[], inTransaction: boolean): Promise<void> {
    if (entries.length === 0) return;
    for (let attempt = 0; attempt < optimisticAttempts; attempt++) {
      if (await this.#linkAndWrite(db, this.#head ?? (await this.#readHead(db)), entries)) return;
      this.#head = undefined;
    }
    const locked = async (tx: SqlQuery) => {
      if (!(await this.#linkAndWrite(tx, await this.#readHead(tx, "FOR UPDATE"), entries))) {
        throw new Error("audit chain head moved while locked");
      }
    };
    await (inTransaction ? locked(db) : this.#sql.transaction(locked));
  }

  /** Chains `entries` onto `head` and writes them if the head is still there; true when written. */
  async #linkAndWrite(db: SqlQuery, head: ChainHead, entries: readonly AuditEntry[]): Promise<boolean> {
    const time = this.#clock.now();
    let previous = head;
    const events: ChainedAuditEvent[] = entries.map((entry) => {
      const unhashed = { ...entry, seq: previous.seq + 1n, time, prevHash: previous.hash };
      const event = { ...unhashed, hash: chainHash(this.#key, unhashed) };
      previous = event;
      return event;
    });
    const [result] = await db.query<{ moved: boolean }>(appendStatement, appendParameters(head, time, events));
    if (!result?.moved) return false;
    this.#head = { seq: previous.seq, hash: previous.hash };
    return true;
  }

  async #readHead(db: SqlQuery, lock: "" | "FOR UPDATE" = ""): Promise<ChainHead> {
    const [head] = await db.query<{ seq: bigint | string; hash: string }>(
      `SELECT seq, hash FROM audit_chain_head WHERE id = 1 ${lock}`,
    );
    if (!head) throw new Error("audit chain head missing; AuditLog.init() was not run");
    return { seq: BigInt(head.seq), hash: head.hash };
  }
}

/**
 * Calls `audit_append` (prisma/migrations/…_audit_append_function): it moves
 * the head from `from` to the last event and inserts the events, all or
 * nothing. A function, so the database plans its statements once per session
 * instead of once per batch; arrays (`unnest`) keep the call the same for
 * every batch size.
 */
const appendStatement = `SELECT audit_append($1::bigint, $2::text, $3::timestamptz, $4::bigint[], $5::text[], $6::text[],
  $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[]) AS moved`;

function appendParameters(from: ChainHead, time: Date, events: readonly ChainedAuditEvent[]): unknown[] {
  const column = (pick: (event: ChainedAuditEvent) => string | null) => events.map(pick);
  return [
    from.seq.toString(),
    from.hash,
    time.toISOString(),
    column((e) => e.seq.toString()),
    column((e) => e.requestId),
    column((e) => e.tenantId),
    column((e) => e.actorId),
    column((e) => e.client),
    column((e) => e.action),
    column((e) => e.target),
    column((e) => e.outcome),
    column((e) => e.reason),
    column((e) => e.prevHash),
    column((e) => e.hash),
  ];
}

/**
 * The embedded database runs one transaction at a time, so a transaction may
 * wait its turn behind a batch; give it longer than Prisma's 2 s default.
 */
export const transactionOptions = { maxWait: 10_000, timeout: 15_000 } as const;
