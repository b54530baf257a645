// The embedded database does autovacuum's job itself: tables past the
// thresholds are vacuumed and analyzed, the others are left alone, and the
// rounds run on their own while the database is open.
import { afterEach, describe, expect, it } from "vitest";
import { autovacuumRound } from "../../src/db/autovacuum.js";
import { type Database, openEmbedded } from "../../src/db/database.js";
import { migrate } from "../../src/db/migrate.js";
import { pruneExpired } from "../../src/db/prune.js";

interface TableStats {
  n_dead_tup: number;
  last_vacuum: Date | null;
  last_analyze: Date | null;
}

async function stats(database: Database, table: string): Promise<TableStats> {
  // Statistics reach the shared counters at most once a second unless forced.
  await database.sql.query("SELECT pg_stat_force_next_flush()");
  const [row] = await database.sql.query<TableStats>(
    "SELECT n_dead_tup::int, last_vacuum, last_analyze FROM pg_stat_user_tables WHERE relname = $1",
    [table],
  );
  if (!row) throw new Error(`no statistics for ${table}`);
  return row;
}

/** Writes and prunes `count` replay-guard values: dead rows and changes past every threshold. */
async function churn(database: Database, count: number) {
  const past = new Date(Date.now() - 60_000);
  await database.prisma.replayGuard.createMany({
    data: Array.from({ length: count }, (_, i) => ({ key: `k${i}`, expiresAt: past })),
  });
  expect(await pruneExpired(database.prisma, "replay_guard", new Date())).toBe(count);
}

describe("embedded autovacuum", () => {
  let database: Database | undefined;
  afterEach(async () => {
    await database?.close();
    database = undefined;
  });

  it("vacuums and analyzes the tables past the thresholds, and only those", async () => {
    ({ database } = await openEmbedded(undefined, { autovacuumMs: 3_600_000 }));
    await migrate(database);
    await churn(database, 500);
    expect(await stats(database, "replay_guard")).toMatchObject({ n_dead_tup: 500, last_vacuum: null });

    const done = await autovacuumRound(database.sql);
    expect(done).toContainEqual({ table: "public.replay_guard", vacuumed: true });
    // Tables nobody wrote to are not due.
    expect(done.map((d) => d.table)).not.toContain("public.lease");
    const after = await stats(database, "replay_guard");
    expect(after.n_dead_tup).toBe(0);
    expect(after.last_vacuum).not.toBeNull();
    expect(after.last_analyze).not.toBeNull();

    // Nothing changed since: the next round has nothing to do for it.
    const again = await autovacuumRound(database.sql);
    expect(again.map((d) => d.table)).not.toContain("public.replay_guard");
  });

  it("runs rounds on its own while open, and closes cleanly between them", async () => {
    ({ database } = await openEmbedded(undefined, { autovacuumMs: 20 }));
    await migrate(database);
    await churn(database, 300);
    const opened = database;
    await expect
      .poll(async () => (await stats(opened, "replay_guard")).last_vacuum, {
        timeout: 10_000,
        message: "no autovacuum round within 10 s",
      })
      .not.toBeNull();
    expect((await stats(database, "replay_guard")).n_dead_tup).toBe(0);
    await database.close();
    database = undefined;
  });
});
