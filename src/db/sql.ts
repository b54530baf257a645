// The raw-SQL seam: what the driver (node-postgres or PGlite) offers the few
// statements that bypass Prisma (see database.ts), as interfaces of their own
// so code that only runs statements needs nothing else of the database.
import type { Prisma, PrismaClient } from "../../gen/prisma/client.js";

/** The Prisma client or an interactive transaction: what domain functions take. */
export type Db = PrismaClient | Prisma.TransactionClient;

/** Runs one statement with positional parameters (`$1`, …). */
export interface SqlQuery {
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<Row[]>;
}

export interface SqlSession extends SqlQuery {
  /** Runs a script of several statements. */
  exec(script: string): Promise<void>;
}

/** Raw statements on the driver: one at a time from the pool, or a transaction on one connection. */
export interface SqlClient extends SqlQuery {
  /** Runs `work` in a transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(work: (tx: SqlQuery) => Promise<T>): Promise<T>;
}

/** A Prisma client or transaction as a SqlQuery, for code that runs either way. */
export function sqlOf(db: Db | SqlQuery): SqlQuery {
  if (!("$queryRawUnsafe" in db)) return db;
  return { query: (sql, params = []) => db.$queryRawUnsafe(sql, ...params) };
}
