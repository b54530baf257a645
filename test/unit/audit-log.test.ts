// AuditLog against real databases: appends from several writers that each
// guess the chain head (two instances, group-committed batches, appends
// inside transactions, a rolled-back one) still make one intact chain.
import { randomBytes } from "node:crypto";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { AuditLog } from "../../src/audit/audit-log.js";
import { auditChainKey, verifyAuditChain } from "../../src/audit/audit-queries.js";
import type { AuditEntry } from "../../src/core/audit.js";
import { systemClock } from "../../src/core/clock.js";
import { RootKey } from "../../src/crypto/root-key.js";
import { type Database, openDatabase, type SqlClient } from "../../src/db/database.js";
import { migrate } from "../../src/db/migrate.js";
import { createTestDatabase, databaseKinds, type TestDatabase } from "../support/databases.js";

const rootKey = new RootKey(randomBytes(32));
const log = pino({ level: "silent" });

function entry(target: string): AuditEntry {
  return {
    requestId: `req_${target}`,
    tenantId: null,
    actorId: null,
    client: "test",
    action: "test.append",
    target,
    outcome: "success",
    reason: "",
  };
}

describe.each(databaseKinds)("AuditLog on %s", (kind) => {
  let db: TestDatabase;
  const extra: Database[] = [];
  afterEach(async () => {
    for (const other of extra.splice(0)) await other.close();
    await db.drop();
  });

  /** Two writers on one database: on PostgreSQL each with its own connection pool, as two instances have. */
  async function twoWriters(): Promise<[AuditLog, AuditLog]> {
    db = await createTestDatabase(kind);
    await migrate(db.database);
    const second = db.url ? await openDatabase({ kind: "postgres", url: db.url, poolSize: 4 }) : db.database;
    if (second !== db.database) extra.push(second);
    const writers = [db.database, second].map(
      (database) =>
        new AuditLog({
          prisma: database.prisma,
          sql: database.sql,
          key: auditChainKey(rootKey),
          clock: systemClock,
          log,
        }),
    ) as [AuditLog, AuditLog];
    await writers[0].init();
    return writers;
  }

  async function targets(): Promise<string[]> {
    const rows = await db.database.prisma.auditEvent.findMany({ orderBy: { seq: "asc" } });
    expect(rows.map((row) => row.seq)).toEqual(rows.map((_, i) => BigInt(i + 1)));
    return rows.map((row) => row.target);
  }

  it("keeps one chain when two instances append at once, in batches and in transactions", async () => {
    const [a, b] = await twoWriters();
    const written: string[] = [];
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i++) {
      const writer = i % 2 ? a : b;
      const target = `t${i}`;
      written.push(target);
      work.push(
        i % 3 === 0
          ? writer.transaction(
              async () => undefined,
              () => entry(target),
            )
          : writer.append(entry(target)),
      );
    }
    await Promise.all(work);
    expect((await targets()).sort()).toEqual(written.sort());
    expect(await verifyAuditChain({ prisma: db.database.prisma, rootKey })).toMatchObject({
      intact: true,
      eventsChecked: 60n,
    });
  });

  it("appends even when another instance moves the head before every attempt", async () => {
    const [other] = await twoWriters();
    // Each compare-and-set of this writer outside a transaction comes just
    // after another instance's append, so it always misses: two busy brokers
    // starved each other like this. The locked append must still get through.
    let interference = 0;
    const racedSql: SqlClient = {
      async query(text, params) {
        if (text.includes("audit_append")) await other.append(entry(`other${++interference}`));
        return db.database.sql.query(text, params);
      },
      transaction: (work) => db.database.sql.transaction(work),
    };
    const raced = new AuditLog({
      prisma: db.database.prisma,
      sql: racedSql,
      key: auditChainKey(rootKey),
      clock: systemClock,
      log,
    });
    await raced.append(entry("raced"));
    expect(interference).toBeGreaterThan(0);
    expect((await targets()).at(-1)).toBe("raced");
    expect(await verifyAuditChain({ prisma: db.database.prisma, rootKey })).toMatchObject({
      intact: true,
      eventsChecked: BigInt(interference + 1),
    });
  });

  // Another instance appending in the middle of this one's transaction needs
  // a second connection: PGlite's single session would wait for the
  // transaction to end.
  if (kind === "postgres") {
    it("appends within a transaction even when another instance keeps moving the head", async () => {
      const [a, other] = await twoWriters();
      let interference = 0;
      await db.database.sql.transaction(async (tx) => {
        let locked = false; // once this transaction holds the head, the other instance would wait for it
        await a.appendInTransaction(
          {
            async query(text, params) {
              locked ||= text.includes("FOR UPDATE");
              if (!locked && text.includes("audit_append")) await other.append(entry(`other${++interference}`));
              return tx.query(text, params);
            },
          },
          [entry("in transaction")],
        );
      });
      expect(interference).toBeGreaterThan(0);
      expect((await targets()).at(-1)).toBe("in transaction");
      expect(await verifyAuditChain({ prisma: db.database.prisma, rootKey })).toMatchObject({ intact: true });
    });
  }

  it("appends after a transaction that appended and then rolled back", async () => {
    const [a] = await twoWriters();
    await a.append(entry("before"));
    await expect(
      a.transaction(
        async () => {
          throw new Error("the mutation failed");
        },
        () => entry("never"),
      ),
    ).rejects.toThrow("the mutation failed");
    await expect(
      db.database.prisma.$transaction(async (tx) => {
        await a.appendInTransaction(tx, [entry("rolled back")]);
        throw new Error("rolled back after the append");
      }),
    ).rejects.toThrow("rolled back after the append");
    await a.append(entry("after"));
    expect(await targets()).toEqual(["before", "after"]);
    expect(await verifyAuditChain({ prisma: db.database.prisma, rootKey })).toMatchObject({ intact: true });
  });

  it("links to events another instance wrote since its last append", async () => {
    const [a, b] = await twoWriters();
    await a.append(entry("a1"));
    await b.append(entry("b1"));
    await b.append(entry("b2"));
    await a.append(entry("a2")); // a's guess of the head is two events old
    expect(await targets()).toEqual(["a1", "b1", "b2", "a2"]);
    expect(await verifyAuditChain({ prisma: db.database.prisma, rootKey })).toMatchObject({ intact: true });
  });
});
