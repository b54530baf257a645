// Fixed-window rate limits kept in each instance's memory. With N instances
// behind a balancer the effective limit is at most N times the setting: the
// state is partitioned, never wrong in the permissive direction for one
// instance, and costs no database round trip on the hot path.
import type { Clock } from "./clock.js";
import { DomainError } from "./errors/domain-error.js";

export class RateLimiter {
  readonly #windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly limitPerMinute: number,
    private readonly clock: Clock,
    /** Told of each event over the limit (metrics: `aegis_rate_limit_refusals_total`). */
    private readonly onRefused: () => void = () => {},
  ) {}

  /** Counts one event for `key`; throws resource_exhausted with Retry-After when over the limit. */
  hit(key: string, what: string): void {
    const now = this.clock.now().getTime();
    let window = this.#windows.get(key);
    if (!window || now - window.start >= 60_000) {
      if (this.#windows.size > 100_000) this.#sweep(now);
      window = { start: now, count: 0 };
      this.#windows.set(key, window);
    }
    window.count++;
    if (window.count > this.limitPerMinute) {
      this.onRefused();
      const retryAfter = Math.max(1, Math.ceil((window.start + 60_000 - now) / 1000));
      throw new DomainError("resource_exhausted", "RATE_LIMITED", `too many ${what}; retry in ${retryAfter} s`, {
        headers: { "retry-after": String(retryAfter) },
      });
    }
  }

  /** True when `key` is already over the limit (does not count). */
  exceeded(key: string): boolean {
    const window = this.#windows.get(key);
    return !!window && this.clock.now().getTime() - window.start < 60_000 && window.count >= this.limitPerMinute;
  }

  #sweep(now: number): void {
    for (const [key, window] of this.#windows) if (now - window.start >= 60_000) this.#windows.delete(key);
  }
}
