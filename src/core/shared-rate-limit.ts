// Rate limits shared by every broker on one PostgreSQL: the windows of
// rate-limit.ts kept in the `rate_limit` table, so a key guesser spread over
// N instances behind a balancer meets the limit once, not N times.
//
// Why the broker's own table rather than rate-limiter-flexible's PostgreSQL
// store: that store reads the time itself (Date.now()), while every limit here
// runs on the broker's clock (the tests move it; the window must not come
// from the database's now() either), and it would open a second schema and
// table outside the migrations. What is needed is one statement per hit.
//
// One hit is one atomic upsert: a window that has ended starts again at the
// broker's now, otherwise its count grows, and the count comes back in the
// same statement, so concurrent hits on several instances each see a
// distinct count and exactly `limit` of them pass. Hits and checks arriving
// together share a statement (group commit), keys sorted so that concurrent
// batches lock rows in one order and never deadlock.
import type { SqlQuery } from "../db/database.js";
import { GroupCommit } from "../db/group-commit.js";
import type { Clock } from "./clock.js";
import { type RateLimiter, rateLimited, rateLimitWindowMs } from "./rate-limit.js";

interface Window {
  readonly count: number;
  /** Epoch ms when the window ends. */
  readonly endsAt: number;
}

interface WindowRow {
  key: string;
  count: number;
  expires_at: Date | string;
}

const windowOf = (row: WindowRow): Window => ({ count: row.count, endsAt: new Date(row.expires_at).getTime() });

export class SharedRateLimits {
  readonly #hits: GroupCommit<string, Window>;
  readonly #reads: GroupCommit<string, Window | undefined>;

  constructor(
    sql: SqlQuery,
    private readonly clock: Clock,
  ) {
    this.#hits = new GroupCommit(async (keys) => {
      const now = this.clock.now().getTime();
      const counts = new Map<string, number>();
      for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
      const distinct = [...counts.keys()].sort();
      const rows = await sql.query<WindowRow>(
        `INSERT INTO rate_limit AS r (key, count, expires_at)
         SELECT key, n, $3::timestamptz FROM unnest($1::text[], $2::int[]) AS hit(key, n) ORDER BY key
         ON CONFLICT (key) DO UPDATE SET
           count = CASE WHEN r.expires_at <= $4::timestamptz THEN excluded.count ELSE r.count + excluded.count END,
           expires_at = CASE WHEN r.expires_at <= $4::timestamptz THEN excluded.expires_at ELSE r.expires_at END
         RETURNING key, count, expires_at`,
        [
          distinct,
          distinct.map((key) => counts.get(key)),
          new Date(now + rateLimitWindowMs).toISOString(),
          new Date(now).toISOString(),
        ],
      );
      const after = new Map(rows.map((row) => [row.key, windowOf(row)]));
      // The hits of one key in this batch take the counts up to the final one, in arrival order.
      const seen = new Map<string, number>();
      return keys.map((key) => {
        const final = after.get(key) as Window;
        const index = seen.get(key) ?? 0;
        seen.set(key, index + 1);
        return { count: final.count - (counts.get(key) as number) + 1 + index, endsAt: final.endsAt };
      });
    });
    this.#reads = new GroupCommit(async (keys) => {
      const rows = await sql.query<WindowRow>(
        "SELECT key, count, expires_at FROM rate_limit WHERE key = ANY($1::text[]) AND expires_at > $2::timestamptz",
        [[...new Set(keys)], this.clock.now().toISOString()],
      );
      const found = new Map(rows.map((row) => [row.key, windowOf(row)]));
      return keys.map((key) => found.get(key));
    });
  }

  /** A limit of `limitPerMinute` events per key, its keys apart from other limits' by `name`. */
  limiter(name: string, limitPerMinute: number, onRefused: () => void = () => {}): RateLimiter {
    const refuse = (what: string, window: Window): never => {
      onRefused();
      throw rateLimited(what, window.endsAt - this.clock.now().getTime());
    };
    return {
      hit: async (key, what) => {
        const window = await this.#hits.submit(`${name}:${key}`);
        if (window.count > limitPerMinute) refuse(what, window);
      },
      refuseIfOver: async (key, what) => {
        const window = await this.#reads.submit(`${name}:${key}`);
        if (window && window.count >= limitPerMinute) refuse(what, window);
      },
    };
  }

  /** Waits for the statements under way (shutdown). */
  async close(): Promise<void> {
    await Promise.all([this.#hits.close(), this.#reads.close()]);
  }
}
