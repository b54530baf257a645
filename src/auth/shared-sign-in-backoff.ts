// The per-account sign-in backoff (sign-in-backoff.ts) shared by every broker
// on one PostgreSQL: its counts kept in the `rate_limit` table beside the
// other shared limits (core/shared-rate-limit.ts), so failures spread over N
// instances meet the wait at the same attempt as on one.
//
// One row per account and address, its key a keyed hash of both (a name is
// whatever was typed, now and then a password in the wrong field; the table
// never holds it). The row keeps the count and, as `expires_at`, the end of
// the quiet period that forgets it: the wait of the last failure plus
// `maxBackoffSeconds`. The wait itself is then `expires_at` less
// `maxBackoffSeconds`, once failures are no longer free.
//
// A failure is one atomic upsert on the broker's clock (never the database's
// now()): a row past its quiet period starts again at one, otherwise its count
// grows, so failures recorded at once on several instances all count. Sign-ins
// are few and each waits on a password hash, so no group commit: one
// statement per check or failure.
import { createHmac } from "node:crypto";
import type { Clock } from "../core/clock.js";
import type { SqlQuery } from "../db/database.js";
import { backoffSeconds, type SignInBackoff, type SignInBackoffConfig, signInSlowed } from "./sign-in-backoff.js";

interface Row {
  count: number;
  expires_at: Date | string;
}

/** The failure count after this one: one when the row's quiet period ended ($2: now). */
const nextCount = "CASE WHEN r.expires_at <= $2::timestamptz THEN 1 ELSE r.count + 1 END";
/** The quiet period's end after failure number `n` ($3: free failures, $4: longest wait): as backoffSeconds(). */
const quietEnd = (n: string) =>
  `$2::timestamptz + make_interval(secs => $4::float8 + CASE WHEN ${n} > $3::int
     THEN LEAST(power(2::float8, LEAST(${n} - $3::int - 1, 30)), $4::float8) ELSE 0 END)`;

export class SharedSignInBackoff implements SignInBackoff {
  constructor(
    private readonly sql: SqlQuery,
    private readonly config: SignInBackoffConfig,
    private readonly clock: Clock,
    /** Keys the hash of account and address (rootKey.deriveKey(keyPurposes.signInBackoffKey)). */
    private readonly hashKey: Buffer,
  ) {}

  async refuseIfWaiting(account: string, address: string): Promise<void> {
    const now = this.clock.now();
    const [row] = await this.sql.query<Row>(
      "SELECT count, expires_at FROM rate_limit WHERE key = $1 AND expires_at > $2::timestamptz",
      [this.#key(account, address), now.toISOString()],
    );
    if (!row || backoffSeconds(this.config, row.count) === 0) return;
    const until = new Date(row.expires_at).getTime() - this.config.maxBackoffSeconds * 1000;
    if (until > now.getTime()) throw signInSlowed(row.count, until, now.getTime(), address);
  }

  async recordFailure(account: string, address: string): Promise<void> {
    await this.sql.query(
      `INSERT INTO rate_limit AS r (key, count, expires_at) VALUES ($1, 1, ${quietEnd("1")})
       ON CONFLICT (key) DO UPDATE SET count = ${nextCount}, expires_at = ${quietEnd(nextCount)}`,
      [
        this.#key(account, address),
        this.clock.now().toISOString(),
        this.config.freeFailures,
        this.config.maxBackoffSeconds,
      ],
    );
  }

  async recordSuccess(account: string, address: string): Promise<void> {
    await this.sql.query("DELETE FROM rate_limit WHERE key = $1", [this.#key(account, address)]);
  }

  #key(account: string, address: string): string {
    const hash = createHmac("sha256", this.hashKey).update(`${account}\n${address}`).digest("base64url");
    return `sign_in_backoff:${hash}`;
  }
}
