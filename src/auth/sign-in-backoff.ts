// Per-account slowing of repeated password failures on the sign-in pages,
// beside the shared per-address limit (failed-authentications.ts).
//
// After `freeFailures` wrong passwords for one account, each further attempt
// must wait: 1 s, 2 s, 4 s … doubling per failure up to `maxBackoffSeconds`. A
// success, or a quiet period of `maxBackoffSeconds` after the wait ends, starts
// the count again.
//
// The count is kept per account *and* client address on purpose: a stranger
// guessing someone's password slows only their own attempts, so failures
// can never be used to lock the account's owner out (no hard lockout, none
// by proxy). A guesser spread over many addresses still meets this wait at
// each of them, and the per-address limit. Unknown names are counted like
// accounts, so the answer never tells a real account from a made-up one.
//
// Where the counts live follows the other security limits (core/rate-limit.ts):
// on the embedded database in this process's memory (this file), on
// PostgreSQL in the `rate_limit` table every instance shares
// (shared-sign-in-backoff.ts), so a guesser spread over N instances behind a
// balancer meets the wait at the same attempt as on one.
import type { Clock } from "../core/clock.js";
import { DomainError } from "../core/errors/domain-error.js";

export interface SignInBackoffConfig {
  /** Wrong passwords allowed without waiting. */
  readonly freeFailures: number;
  /** The longest wait between attempts, in seconds. */
  readonly maxBackoffSeconds: number;
}

/** The one interface both stores are used through; `account` is an account id or a name, never a secret. */
export interface SignInBackoff {
  /** Rejects with resource_exhausted (with Retry-After) while `account` must wait at `address`. */
  refuseIfWaiting(account: string, address: string): Promise<void>;
  /** Counts one wrong password for `account` at `address`, and sets the wait the next attempt meets. */
  recordFailure(account: string, address: string): Promise<void>;
  /** A successful sign-in clears the count. */
  recordSuccess(account: string, address: string): Promise<void>;
}

/** The wait, in seconds, set by the `count`th failure in a row (0 while failures are free). */
export function backoffSeconds(config: SignInBackoffConfig, count: number): number {
  const over = count - config.freeFailures;
  return over > 0 ? Math.min(2 ** Math.min(over - 1, 30), config.maxBackoffSeconds) : 0;
}

/** The refusal of an attempt `count` failures in, which must wait until epoch ms `until`. */
export function signInSlowed(count: number, until: number, now: number, address: string): DomainError {
  const retryAfter = Math.max(1, Math.ceil((until - now) / 1000));
  return new DomainError(
    "resource_exhausted",
    "SIGN_IN_SLOWED",
    `too many failed sign-ins for this account; retry in ${retryAfter} s`,
    { headers: { "retry-after": String(retryAfter) }, detail: `${count} failures from ${address}` },
  );
}

interface Failures {
  count: number;
  /** Epoch ms before which the next attempt is refused (0: no wait). */
  until: number;
  /** Epoch ms of the last failure. */
  lastAt: number;
}

const maxEntries = 100_000;

export class InProcessSignInBackoff implements SignInBackoff {
  readonly #entries = new Map<string, Failures>();

  constructor(
    private readonly config: SignInBackoffConfig,
    private readonly clock: Clock,
  ) {}

  async refuseIfWaiting(account: string, address: string): Promise<void> {
    const entry = this.#live(account, address);
    const now = this.clock.now().getTime();
    if (entry && entry.until > now) throw signInSlowed(entry.count, entry.until, now, address);
  }

  async recordFailure(account: string, address: string): Promise<void> {
    const now = this.clock.now().getTime();
    const key = keyOf(account, address);
    const entry = this.#live(account, address) ?? { count: 0, until: 0, lastAt: now };
    entry.count++;
    entry.lastAt = now;
    const wait = backoffSeconds(this.config, entry.count);
    if (wait > 0) entry.until = now + wait * 1000;
    if (!this.#entries.has(key) && this.#entries.size >= maxEntries) this.#sweep(now);
    this.#entries.set(key, entry);
  }

  async recordSuccess(account: string, address: string): Promise<void> {
    this.#entries.delete(keyOf(account, address));
  }

  /** The entry, unless its quiet period passed (then it is forgotten). */
  #live(account: string, address: string): Failures | undefined {
    const key = keyOf(account, address);
    const entry = this.#entries.get(key);
    if (entry && this.#expired(entry, this.clock.now().getTime())) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry;
  }

  #expired(entry: Failures, now: number): boolean {
    return now >= Math.max(entry.until, entry.lastAt) + this.config.maxBackoffSeconds * 1000;
  }

  #sweep(now: number): void {
    for (const [key, entry] of this.#entries) if (this.#expired(entry, now)) this.#entries.delete(key);
    // Still full (a flood of names): drop the oldest, which only forgives.
    while (this.#entries.size >= maxEntries) this.#entries.delete(this.#entries.keys().next().value as string);
  }
}

const keyOf = (account: string, address: string) => `${account}\n${address}`;
