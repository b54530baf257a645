// The modules' periodic jobs, each on its own timer. A job never overlaps
// itself: a tick that finds the previous run still going is skipped, as
// Vault skips its periodic function, so a run slower than its interval
// (a destruction sweep over many due keys on a busy database) cannot pile
// up runs that fight for the same rows and the connection pool. Stopping
// clears the timers and waits for the runs in progress, so nothing is
// still writing when the audit trail and the database close after it.
import type { Logger } from "pino";
import type { Clock } from "../core/clock.js";
import type { PeriodicJob } from "../core/module.js";

export interface RunningJobs {
  /** Starts no more runs and resolves once the runs in progress have ended. */
  stop(): Promise<void>;
}

export function startJobs(jobs: readonly PeriodicJob[], deps: { clock: Clock; log: Logger }): RunningJobs {
  const running = new Set<Promise<void>>();
  const timers = jobs.map((job) => {
    let run: Promise<void> | undefined;
    const timer = setInterval(() => {
      if (run) return;
      const current = job
        .run(deps.clock.now())
        .then(
          () => undefined,
          (error: unknown) => deps.log.warn({ err: error, job: job.name }, "periodic job failed"),
        )
        .finally(() => {
          run = undefined;
          running.delete(current);
        });
      run = current;
      running.add(current);
    }, job.everyMs);
    timer.unref();
    return timer;
  });
  return {
    async stop() {
      for (const timer of timers) clearInterval(timer);
      await Promise.all(running);
    },
  };
}
