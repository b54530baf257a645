// Opens the broker's database: the embedded PGlite (default) or a real
// PostgreSQL. Both speak the same SQL and take the same migrations; the rest
// of the broker sees only the Prisma client. The raw SQL session below exists
// for the migration runner alone (multi-statement scripts and a
// session-level advisory lock, which Prisma's query API cannot express).
import { mkdirSync } from "node:fs";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaPGlite } from "pglite-prisma-adapter";
import { type Prisma, PrismaClient } from "../../gen/prisma/client.js";

/** The Prisma client or an interactive transaction: what domain functions take. */
export type Db = PrismaClient | Prisma.TransactionClient;

/**
 * The adapters are built against other releases of Prisma's adapter
 * interface than the 6.19 client (see the versions table in README
 * "Migrations"); the shapes agree at run time, tested on both databases, but
 * their type declarations are distinct. This is the one place that bridges them.
 */
type AdapterFactory = NonNullable<ConstructorParameters<typeof PrismaClient>[0]>["adapter"];
const asAdapter = (factory: unknown) => factory as AdapterFactory;

export interface SqlSession {
  query<Row = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<Row[]>;
  /** Runs a script of several statements. */
  exec(script: string): Promise<void>;
}

export interface Database {
  readonly kind: "pglite" | "postgres";
  readonly prisma: PrismaClient;
  /** Runs `work` on one dedicated connection (migrations only). */
  withSession<T>(work: (session: SqlSession) => Promise<T>): Promise<T>;
  /** True when a trivial query succeeds. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export type DatabaseTarget =
  | { readonly kind: "postgres"; readonly url: string; readonly poolSize?: number }
  | { readonly kind: "pglite"; readonly dataDir: string | undefined }; // undefined: in memory

export async function openDatabase(target: DatabaseTarget): Promise<Database> {
  return target.kind === "postgres"
    ? openPostgres(target.url, target.poolSize ?? 10)
    : (await openEmbedded(target.dataDir)).database;
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
    async withSession(work) {
      const client = await pool.connect();
      try {
        return await work({
          query: async (sql, params) => (await client.query(sql, params)).rows,
          exec: async (script) => void (await client.query(script)),
        });
      } finally {
        client.release();
      }
    },
    ping: () => ping(prisma),
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
export async function openEmbedded(dataDir: string | undefined): Promise<{ database: Database; lite: PGlite }> {
  let dir: string | undefined;
  if (dataDir !== undefined) {
    dir = path.join(dataDir, "pglite");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  const lite = new PGlite(dir);
  await lite.waitReady;
  const prisma = new PrismaClient({ adapter: asAdapter(new PrismaPGlite(lite)) });
  const session: SqlSession = {
    query: async (sql, params) => (await lite.query(sql, params)).rows as never[],
    exec: async (script) => void (await lite.exec(script)),
  };
  // PGlite has a single connection shared by everything in the process, so
  // session-level locks do not exclude anyone here: queue sessions instead.
  let queue: Promise<unknown> = Promise.resolve();
  const database: Database = {
    kind: "pglite",
    prisma,
    withSession(work) {
      const turn = queue.then(() => work(session));
      queue = turn.catch(() => {});
      return turn;
    },
    ping: () => ping(prisma),
    async close() {
      await prisma.$disconnect();
      await lite.close();
    },
  };
  return { database, lite };
}

async function ping(prisma: PrismaClient): Promise<boolean> {
  try {
    await prisma.$queryRaw`SELECT 1`;
    return true;
  } catch {
    return false;
  }
}
