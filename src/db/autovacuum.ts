// Autovacuum's job, for the embedded database. PGlite runs PostgreSQL as one
// single-user backend, where no autovacuum worker ever starts: left alone,
// nothing would VACUUM or ANALYZE it. The tables that churn (replay guard,
// revocation feed, leases' uses) would keep every dead row, and the planner
// would never learn the tables' sizes and value distributions, which the hot
// paths' plans depend on. Measured on a bench data directory: taking uses
// from 8 leases took 2.3 ms as left, 1.4 ms after ANALYZE, and 27 ms after a
// VACUUM alone (sizes updated, no statistics). So a table that is vacuumed is
// always analyzed too.
//
// Each round reads the cumulative statistics and treats the tables past
// autovacuum's own thresholds (the server's `autovacuum_*` settings), one
// statement per table, so other work gets the session in between. PGlite
// runs each statement on this thread, so a statement also holds the event
// loop while it runs: ~1-60 ms (the first check of a session, with a cold
// catalog, 30-50 ms).
import type { SqlQuery } from "./sql.js";

export interface Maintained {
  /** Quoted, schema-qualified table name. */
  readonly table: string;
  readonly vacuumed: boolean;
}

/** Tables whose changes since their last VACUUM or ANALYZE pass autovacuum's thresholds. */
const due = `
  SELECT format('%I.%I', s.schemaname, s.relname) AS "table",
         s.n_dead_tup > current_setting('autovacuum_vacuum_threshold')::float8
                        + current_setting('autovacuum_vacuum_scale_factor')::float8 * greatest(c.reltuples, 0)
      OR s.n_ins_since_vacuum > current_setting('autovacuum_vacuum_insert_threshold')::float8
                        + current_setting('autovacuum_vacuum_insert_scale_factor')::float8 * greatest(c.reltuples, 0)
         AS vacuum,
         s.n_mod_since_analyze > current_setting('autovacuum_analyze_threshold')::float8
                        + current_setting('autovacuum_analyze_scale_factor')::float8 * greatest(c.reltuples, 0)
         AS analyze
    FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
   ORDER BY s.relname`;

/** One round: VACUUM (ANALYZE) or ANALYZE every table that is due; returns what it did. */
export async function autovacuumRound(sql: SqlQuery): Promise<Maintained[]> {
  const tables = await sql.query<{ table: string; vacuum: boolean; analyze: boolean }>(due);
  const done: Maintained[] = [];
  for (const { table, vacuum, analyze } of tables) {
    if (!vacuum && !analyze) continue;
    // `table` comes from the catalog, quoted by format('%I'): not input.
    await sql.query(vacuum ? `VACUUM (ANALYZE) ${table}` : `ANALYZE ${table}`);
    done.push({ table, vacuumed: vacuum });
  }
  return done;
}

export interface Autovacuum {
  /** Stops the rounds and waits for one in progress. */
  stop(): Promise<void>;
}

/** Runs a round every `everyMs` until stopped (never two at once); a failed round is reported, the next tries again. */
export function startAutovacuum(
  sql: SqlQuery,
  everyMs: number,
  onRound: (result: { done: Maintained[]; ms: number } | { error: unknown }) => void,
): Autovacuum {
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    const started = performance.now();
    running ??= autovacuumRound(sql)
      .then(
        (done) => onRound({ done, ms: Math.round(performance.now() - started) }),
        (error: unknown) => onRound({ error }),
      )
      .finally(() => {
        running = undefined;
      });
  }, everyMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
