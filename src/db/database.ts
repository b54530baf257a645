// Opens the broker's database: the embedded PGlite (default) or a real
// PostgreSQL. Both speak the same SQL and take the same migrations. Domain
// code goes through the Prisma client, with two exceptions:
//
// - `withSession`, for the migration runner alone (multi-statement scripts
//   and a session-level advisory lock, which Prisma's query API cannot
//   express);
// - `sql`, raw statements straight to the driver, for the few statements on
//   the hottest paths (audit batches, replay claims, lease redeems). Prisma
//   runs its query compiler even for raw SQL: measured on PGlite, `SELECT 1`
//   costs 0.15 ms through the driver and 0.80 ms through `$queryRawUnsafe`,
//   more than most of those statements take to execute. On the embedded
//   database they run as named prepared statements (./pglite-prepared.ts).
import path from "node:path";
import type { PGlite } from "@electric-sql/pglite";
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaPGlite } from "pglite-prisma-adapter";
import type { Logger } from "pino";
import { PrismaClient } from "../../gen/prisma/client.js";
import { startAutovacuum } from "./autovacuum.js";
import type { SqlClient, SqlQuery, SqlSession } from "./sql.js";

export { type Db, type SqlClient, type SqlQuery, type SqlSession, sqlOf } from "./sql.js";

import { openPglite } from "./pglite.js";
import { preparedStatements } from "./pglite-prepared.js";

/**
 * The adapters are built against other releases of Prisma's adapter
 * interface than the 6.19 client (see the versions table in README
 * "Migrations"); the shapes agree at run time, tested on both databases, but
 * their type declarations are distinct. This is the one place that bridges them.
 */
type AdapterFactory = NonNullable<ConstructorParameters<typeof PrismaClient>[0]>["adapter"];
const asAdapter = (factory: unknown) => factory as AdapterFactory;

export interface Database {
  readonly kind: "pglite" | "postgres";
  readonly prisma: PrismaClient;
  /** Raw SQL on the driver, for the hot paths named at the top of this file. */
  readonly sql: SqlClient;
  /** Runs `work` on one dedicated connection (migrations only). */
  withSession<T>(work: (session: SqlSession) => Promise<T>): Promise<T>;
  /** True when a trivial query succeeds. */
  ping(): Promise<boolean>;
  /** The connection pool's state now (PostgreSQL; the embedded database has one session and no pool). */
  poolStats?(): { total: number; idle: number; waiting: number };
  close(): Promise<void>;
}

export type DatabaseTarget =
  | { readonly kind: "postgres"; readonly url: string; readonly poolSize?: number }
  | ({ readonly kind: "pglite"; readonly dataDir: string | undefined } & EmbeddedOptions); // undefined: in memory

export interface EmbeddedOptions {
  /** Where autovacuum rounds report (see ./autovacuum.ts); silent without. */
  readonly log?: Pick<Logger, "debug" | "warn">;
  /** How often the embedded database checks for tables to VACUUM or ANALYZE. */
  readonly autovacuumMs?: number;
}

/**
 * Autovacuum's own check is once a minute per database. A new embedded broker's
 * tables go from empty to busy within seconds, and its plans depend on the
 * first ANALYZE, so it looks more often: a check is one catalog query.
 */
const defaultAutovacuumMs = 15_000;

export async function openDatabase(target: DatabaseTarget): Promise<Database> {
  return target.kind === "postgres"
    ? openPostgres(target.url, target.poolSize ?? 10)
    : (await openEmbedded(target.dataDir, target)).database;
}

async function openPostgres(url: string, poolSize: number): Promise<Database> {
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  // An idle client that loses its server emits 'error' on the pool; without a
  // listener that would crash the process. The next query reconnects.
  pool.on("error", () => {});
  const prisma = new PrismaClient({ adapter: asAdapter(new PrismaPg(pool)) });
  return {
    kind: "postgres",
    prisma,
    sql: {
      ...onClient(pool),
      async transaction(work) {
        const client = await pool.connect();
        try {
          await client.query("BEGIN");
          const result = await work(onClient(client));
          await client.query("COMMIT");
          return result;
        } catch (error) {
          await client.query("ROLLBACK").catch(() => {});
          throw error;
        } finally {
          client.release();
        }
      },
    },
    async withSession(work) {
      const client = await pool.connect();
      try {
        return await work({ ...onClient(client), exec: async (script) => void (await client.query(script)) });
      } finally {
        client.release();
      }
    },
    ping: () => ping(prisma),
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    async close() {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}

/**
 * The embedded database: the Database over it and its one PGlite session,
 * which the primary of several broker processes serves to its workers.
 */
export async function openEmbedded(
  dataDir: string | undefined,
  { log, autovacuumMs = defaultAutovacuumMs }: EmbeddedOptions = {},
): Promise<{ database: Database; lite: PGlite }> {
  const lite = await openPglite(dataDir === undefined ? undefined : path.join(dataDir, "pglite"));
  const prisma = new PrismaClient({ adapter: asAdapter(new PrismaPGlite(lite)) });
  const session: SqlSession = { ...onSession(lite), exec: async (script) => void (await lite.exec(script)) };
  // PGlite has a single connection shared by everything in the process, so
  // session-level locks do not exclude anyone here: queue sessions instead.
  let queue: Promise<unknown> = Promise.resolve();
  // PostgreSQL's autovacuum never runs in PGlite's single-user backend.
  const autovacuum = startAutovacuum(session, autovacuumMs, (round) => {
    if ("error" in round) return log?.warn({ err: round.error }, "embedded database autovacuum failed");
    if (round.done.length) log?.debug({ tables: round.done, ms: round.ms }, "embedded database vacuumed and analyzed");
  });
  const database: Database = {
    kind: "pglite",
    prisma,
    sql: {
      ...preparedStatements(lite),
      transaction: (work) => lite.transaction((tx) => work(onSession(tx))),
    },
    withSession(work) {
      const turn = queue.then(() => work(session));
      queue = turn.catch(() => {});
      return turn;
    },
    ping: () => ping(prisma),
    async close() {
      await autovacuum.stop();
      await prisma.$disconnect();
      await lite.close();
    },
  };
  return { database, lite };
}

function onClient(client: pg.PoolClient | pg.Pool): SqlQuery {
  return {
    query: async <Row>(sql: string, params: readonly unknown[] = []) =>
      (await client.query(sql, params as unknown[])).rows as Row[],
  };
}

function onSession(db: Pick<PGlite, "query">): SqlQuery {
  return {
    query: async <Row>(sql: string, params: readonly unknown[] = []) =>
      (await db.query<Row>(sql, params as unknown[])).rows,
  };
}

async function ping(prisma: PrismaClient): Promise<boolean> {
  try {
    await prisma.$queryRaw`SELECT 1`;
    return true;
  } catch {
    return false;
  }
}
