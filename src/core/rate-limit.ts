// Fixed-window rate limits: the one small interface every limit is used
// through, and its in-process implementation. On the embedded database (one
// broker, or several worker processes of one) the windows live in this
// process's memory and cost no database round trip. Several brokers on one
// PostgreSQL share theirs instead (shared-rate-limit.ts), or each would
// allow N times the limit.
import type { Clock } from "./clock.js";
import { DomainError } from "./errors/domain-error.js";

export interface RateLimiter {
  /** Counts one event for `key`; rejects with resource_exhausted and a Retry-After when over the limit. */
  hit(key: string, what: string): Promise<void>;
  /** Rejects like `hit` when `key` is already at its limit; counts nothing. */
  refuseIfOver(key: string, what: string): Promise<void>;
}

/** One minute: the window of every limit (the settings are per minute). */
export const rateLimitWindowMs = 60_000;

/** The refusal of an event over a limit, `retryAfterMs` before its window ends. */
export function rateLimited(what: string, retryAfterMs: number): DomainError {
  const retryAfter = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new DomainError("resource_exhausted", "RATE_LIMITED", `too many ${what}; retry in ${retryAfter} s`, {
    headers: { "retry-after": String(retryAfter) },
  });
}

export class InProcessRateLimiter implements RateLimiter {
  readonly #windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly limitPerMinute: number,
    private readonly clock: Clock,
    /** Told of each event over the limit (metrics: `aegis_rate_limit_refusals_total`). */
    private readonly onRefused: () => void = () => {},
  ) {}

  async hit(key: string, what: string): Promise<void> {
    const now = this.clock.now().getTime();
    let window = this.#windows.get(key);
    if (!window || now - window.start >= rateLimitWindowMs) {
      if (this.#windows.size > 100_000) this.#sweep(now);
      window = { start: now, count: 0 };
      this.#windows.set(key, window);
    }
    window.count++;
    if (window.count > this.limitPerMinute) this.#refuse(what, window.start, now);
  }

  async refuseIfOver(key: string, what: string): Promise<void> {
    const window = this.#windows.get(key);
    const now = this.clock.now().getTime();
    if (window && now - window.start < rateLimitWindowMs && window.count >= this.limitPerMinute) {
      this.#refuse(what, window.start, now);
    }
  }

  #refuse(what: string, start: number, now: number): never {
    this.onRefused();
    throw rateLimited(what, start + rateLimitWindowMs - now);
  }

  #sweep(now: number): void {
    for (const [key, window] of this.#windows) if (now - window.start >= rateLimitWindowMs) this.#windows.delete(key);
  }
}
