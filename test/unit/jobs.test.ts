// Periodic jobs: a run slower than its interval is not started again until
// it ended (under load, 26 overlapping destruction sweeps were seen fighting
// over one table before this), stopping waits for the run in progress, and
// a failed run is logged and the next tick tries again. The timers are
// vitest's fake ones: the test moves them, it never waits on them.
import pino from "pino";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { startJobs } from "../../src/app/jobs.js";
import { systemClock } from "../../src/core/clock.js";

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

/** A job whose runs end when the test says so. */
function controlledJob() {
  const ends: (() => void)[] = [];
  const fails: ((error: Error) => void)[] = [];
  return {
    job: {
      name: "controlled",
      everyMs: 10,
      run: () =>
        new Promise<void>((resolve, reject) => {
          ends.push(resolve);
          fails.push(reject);
        }),
    },
    get started() {
      return ends.length;
    },
    end: (i: number) => ends[i]?.(),
    fail: (i: number, error: Error) => fails[i]?.(error),
  };
}

it("never starts a run while the previous one is still going", async () => {
  const c = controlledJob();
  const jobs = startJobs([c.job], { clock: systemClock, log: pino({ level: "silent" }) });
  await vi.advanceTimersByTimeAsync(100);
  expect(c.started).toBe(1);
  c.end(0);
  await vi.advanceTimersByTimeAsync(10);
  expect(c.started).toBe(2);
  c.end(1);
  await jobs.stop();
});

it("waits for the run in progress when stopped, and starts none after", async () => {
  const c = controlledJob();
  const jobs = startJobs([c.job], { clock: systemClock, log: pino({ level: "silent" }) });
  await vi.advanceTimersByTimeAsync(10);
  let stopped = false;
  const stopping = jobs.stop().then(() => {
    stopped = true;
  });
  await vi.advanceTimersByTimeAsync(100);
  expect([c.started, stopped]).toEqual([1, false]);
  c.end(0);
  await stopping;
  expect(stopped).toBe(true);
  await vi.advanceTimersByTimeAsync(100);
  expect(c.started).toBe(1);
});

it("logs a failed run and runs again on the next tick", async () => {
  const c = controlledJob();
  const warnings: unknown[] = [];
  const log = pino({ level: "warn" }, { write: (line: string) => void warnings.push(JSON.parse(line)) });
  const jobs = startJobs([c.job], { clock: systemClock, log });
  await vi.advanceTimersByTimeAsync(10);
  c.fail(0, new Error("database went away"));
  await vi.advanceTimersByTimeAsync(10);
  expect(c.started).toBe(2);
  expect(warnings).toEqual([
    expect.objectContaining({ job: "controlled", msg: "periodic job failed", err: expect.anything() }),
  ]);
  c.end(1);
  await jobs.stop();
});
