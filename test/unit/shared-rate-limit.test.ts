// The security limits several brokers share through PostgreSQL
// (src/core/shared-rate-limit.ts), and the in-process ones of the embedded
// database: both satisfy one RateLimiter, on the broker's clock.
import { describe, expect, it } from "vitest";
import { DomainError } from "../../src/core/errors/domain-error.js";
import { InProcessRateLimiter, type RateLimiter } from "../../src/core/rate-limit.js";
import { SharedRateLimits } from "../../src/core/shared-rate-limit.js";
import { pruneExpired } from "../../src/db/prune.js";
import { TestClock } from "../support/clock.js";
import { databaseKinds, useInstancePools } from "../support/databases.js";

/** What a hit came to: passed, or refused with its Retry-After in seconds. */
async function outcome(attempt: Promise<void>): Promise<"passed" | number> {
  try {
    await attempt;
    return "passed";
  } catch (error) {
    if (!(error instanceof DomainError) || error.code !== "resource_exhausted") throw error;
    return Number(error.options.headers?.["retry-after"]);
  }
}

describe("InProcessRateLimiter", () => {
  it("refuses the event past the limit until the window of the broker's clock ends", async () => {
    const clock = new TestClock();
    const limiter: RateLimiter = new InProcessRateLimiter(2, clock);
    expect(await outcome(limiter.hit("a", "tries"))).toBe("passed");
    expect(await outcome(limiter.refuseIfOver("a", "tries"))).toBe("passed");
    expect(await outcome(limiter.hit("a", "tries"))).toBe("passed");
    expect(await outcome(limiter.refuseIfOver("a", "tries"))).toBe(60);
    clock.advance(60_000);
    expect(await outcome(limiter.hit("a", "tries"))).toBe("passed");
  });
});

describe.each(databaseKinds)("SharedRateLimits on %s", (kind) => {
  const shared = useInstancePools(kind);
  const clock = new TestClock();
  const instances = () => shared.pools.map((pool) => new SharedRateLimits(pool.sql, clock));

  it("lets exactly the limit through when 90 hits race over three instances", async () => {
    const refusals: number[] = [];
    const limiters = instances().map((shared) => shared.limiter("race", 20, () => refusals.push(1)));
    const outcomes = await Promise.all(
      Array.from({ length: 90 }, (_, i) => outcome((limiters[i % limiters.length] as RateLimiter).hit("k", "tries"))),
    );
    expect(outcomes.filter((o) => o === "passed")).toHaveLength(20);
    expect(outcomes.filter((o) => typeof o === "number" && o > 0 && o <= 60)).toHaveLength(70);
    expect(refusals).toHaveLength(70);
  });

  it("refuses on every instance once the hits on the others reached the limit, counting nothing more", async () => {
    const [a, b, c] = instances().map((shared) => shared.limiter("spread", 3)) as [
      RateLimiter,
      RateLimiter,
      RateLimiter,
    ];
    await a.hit("addr", "failures");
    await b.hit("addr", "failures");
    expect(await outcome(c.refuseIfOver("addr", "failures"))).toBe("passed");
    await c.hit("addr", "failures");
    for (const limiter of [a, b, c]) expect(await outcome(limiter.refuseIfOver("addr", "failures"))).toBe(60);
    expect(await outcome(a.refuseIfOver("other", "failures"))).toBe("passed");
    // Limits of other names keep their own counts for the same key.
    expect(await outcome(instances()[0]?.limiter("elsewhere", 3).refuseIfOver("addr", "x") as Promise<void>)).toBe(
      "passed",
    );
  });

  it("starts a window again on the broker's clock, not the database's, and prunes ended ones", async () => {
    const limiter = (instances()[0] as SharedRateLimits).limiter("clocked", 1);
    await limiter.hit("k", "tries");
    clock.advance(30_000);
    expect(await outcome(limiter.hit("k", "tries"))).toBe(30);
    clock.advance(30_000);
    expect(await outcome(limiter.hit("k", "tries"))).toBe("passed");
    clock.advance(120_000);
    expect(await pruneExpired(shared.db.database.prisma, "rate_limit", clock.now())).toBeGreaterThan(0);
    expect(await shared.db.database.sql.query("SELECT key FROM rate_limit WHERE key = 'clocked:k'")).toEqual([]);
  });
});
