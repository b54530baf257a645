// The broker's clock under a test's control: the test moves time forward
// instead of sleeping, and the broker sees expiries, polling intervals and
// grace periods pass at once.
//
// It runs with real time, offset by however far the test has moved it. A
// frozen clock would fall behind the clients' own: DPoP proofs and JWTs that
// client libraries stamp with Date.now() would then look issued in the future
// (the broker allows five seconds of skew). Moving forward only makes them
// look older, which the broker accepts for a minute.
import type { Clock } from "../../src/core/clock.js";

export class TestClock implements Clock {
  #offsetMs = 0;

  now(): Date {
    return new Date(Date.now() + this.#offsetMs);
  }

  /** Moves the clock `ms` forward (backward when negative). */
  advance(ms: number): void {
    this.#offsetMs += ms;
  }

  /** Puts the clock at `date`; it runs on from there. */
  set(date: Date): void {
    this.#offsetMs = date.getTime() - Date.now();
  }
}
