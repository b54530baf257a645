// Test databases: every test file gets its own, on PGlite (in memory) and,
// when AEGIS_TEST_DATABASE_URL points at a PostgreSQL server, on a fresh
// database created there and dropped afterwards. Under CI=true PostgreSQL is
// required: a missing URL or server fails the run instead of skipping.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll } from "vitest";
import { type Database, openDatabase } from "../../src/db/database.js";
import { migrate } from "../../src/db/migrate.js";

export type DatabaseKind = "pglite" | "postgres";

const postgresUrl = process.env.AEGIS_TEST_DATABASE_URL || undefined;
if (process.env.CI === "true" && !postgresUrl) {
  throw new Error("CI=true requires AEGIS_TEST_DATABASE_URL (a PostgreSQL server) so persistence is tested on it too");
}

/** The database kinds the persistence tests run on here. */
export const databaseKinds: DatabaseKind[] = postgresUrl ? ["pglite", "postgres"] : ["pglite"];

export interface TestDatabase {
  readonly database: Database;
  /** Connection URL (PostgreSQL only), for a second broker on the same data. */
  readonly url: string | undefined;
  drop(): Promise<void>;
}

export async function createTestDatabase(kind: DatabaseKind): Promise<TestDatabase> {
  if (kind === "pglite") {
    const database = await openDatabase({ kind: "pglite", dataDir: undefined });
    return { database, url: undefined, drop: () => database.close() };
  }
  const url = await createPostgresDatabase();
  const database = await openDatabase({ kind: "postgres", url, poolSize: 4 });
  return {
    database,
    url,
    async drop() {
      await database.close();
      await dropPostgresDatabase(url);
    },
  };
}

/** Creates an empty database on the test server and returns its URL. */
export async function createPostgresDatabase(): Promise<string> {
  if (!postgresUrl) throw new Error("AEGIS_TEST_DATABASE_URL is not set");
  const name = `aegis_test_${randomBytes(6).toString("hex")}`;
  await withAdmin((client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(postgresUrl);
  url.pathname = `/${name}`;
  return url.href;
}

export async function dropPostgresDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  await withAdmin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}

async function withAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * For one describe block: a migrated database of `kind` and three connection
 * pools on it, one per "instance" as separate brokers have (on PGlite its one
 * connection three times). Read `db` and `pools` inside the tests.
 */
export function useInstancePools(kind: DatabaseKind): { readonly db: TestDatabase; readonly pools: Database[] } {
  const state = {} as { db: TestDatabase; pools: Database[] };
  beforeAll(async () => {
    const db = await createTestDatabase(kind);
    await migrate(db.database);
    state.db = db;
    state.pools = db.url
      ? await Promise.all([1, 2, 3].map(() => openDatabase({ kind: "postgres", url: db.url as string, poolSize: 4 })))
      : [db.database, db.database, db.database];
  });
  afterAll(async () => {
    for (const pool of state.pools) if (pool !== state.db.database) await pool.close();
    await state.db.drop();
  });
  return state;
}
