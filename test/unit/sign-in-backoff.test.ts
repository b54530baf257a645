// The per-account sign-in backoff's two stores (src/auth/sign-in-backoff.ts
// in process, src/auth/shared-sign-in-backoff.ts in the `rate_limit` table)
// behave alike on the broker's clock, and the shared one counts failures
// racing over several instances exactly.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { SharedSignInBackoff } from "../../src/auth/shared-sign-in-backoff.js";
import { InProcessSignInBackoff, type SignInBackoff } from "../../src/auth/sign-in-backoff.js";
import { DomainError } from "../../src/core/errors/domain-error.js";
import { TestClock } from "../support/clock.js";
import { databaseKinds, useInstancePools } from "../support/databases.js";

const config = { freeFailures: 2, maxBackoffSeconds: 3_600 };

/** Whether the next attempt may go ahead, or its Retry-After in seconds. */
async function wait(backoff: SignInBackoff, account = "alice", address = "192.0.2.1"): Promise<"open" | number> {
  try {
    await backoff.refuseIfWaiting(account, address);
    return "open";
  } catch (error) {
    if (!(error instanceof DomainError) || error.reason !== "SIGN_IN_SLOWED") throw error;
    return Number(error.options.headers?.["retry-after"]);
  }
}

/** The same story on either store: free failures, doubling waits, the quiet period, a success. */
async function behaves(backoff: SignInBackoff, clock: TestClock): Promise<void> {
  for (let i = 0; i < 2; i++) await backoff.recordFailure("alice", "192.0.2.1");
  expect(await wait(backoff)).toBe("open");
  await backoff.recordFailure("alice", "192.0.2.1");
  expect(await wait(backoff)).toBe(1);
  // Another address, and another account, are not slowed.
  expect(await wait(backoff, "alice", "192.0.2.2")).toBe("open");
  expect(await wait(backoff, "bob")).toBe("open");
  clock.advance(1_000);
  expect(await wait(backoff)).toBe("open");
  await backoff.recordFailure("alice", "192.0.2.1");
  expect(await wait(backoff)).toBe(2);
  clock.advance(1_500);
  expect(await wait(backoff)).toBe(1);
  // Quiet for the longest wait after the wait ended: the count starts again.
  clock.advance(500 + config.maxBackoffSeconds * 1000);
  for (let i = 0; i < 2; i++) await backoff.recordFailure("alice", "192.0.2.1");
  expect(await wait(backoff)).toBe("open");
  await backoff.recordFailure("alice", "192.0.2.1");
  expect(await wait(backoff)).toBe(1);
  // A success clears it.
  await backoff.recordSuccess("alice", "192.0.2.1");
  expect(await wait(backoff)).toBe("open");
  await backoff.recordFailure("alice", "192.0.2.1");
  expect(await wait(backoff)).toBe("open");
}

describe("InProcessSignInBackoff", () => {
  it("waits 1 s, 2 s … after the free failures, and forgets after the quiet period", async () => {
    const clock = new TestClock();
    await behaves(new InProcessSignInBackoff(config, clock), clock);
  });
});

describe.each(databaseKinds)("SharedSignInBackoff on %s", (kind) => {
  const shared = useInstancePools(kind);
  const clock = new TestClock();
  const hashKey = randomBytes(32);
  const instances = () => shared.pools.map((pool) => new SharedSignInBackoff(pool.sql, config, clock, hashKey));

  it("waits 1 s, 2 s … after the free failures, and forgets after the quiet period", async () => {
    await behaves(instances()[0] as SignInBackoff, clock);
  });

  it("counts every one of 12 failures racing over three instances", async () => {
    const backoffs = instances();
    await Promise.all(
      Array.from({ length: 12 }, (_, i) => (backoffs[i % 3] as SignInBackoff).recordFailure("carol", "192.0.2.9")),
    );
    // Ten past the free two: 2^9 s. One lost failure would show 256.
    for (const backoff of backoffs) expect(await wait(backoff, "carol", "192.0.2.9")).toBe(512);
  });

  it("stores neither the account nor the address", async () => {
    await (instances()[0] as SignInBackoff).recordFailure("dave@example.com", "198.51.100.7");
    const rows = await shared.db.database.sql.query<{ key: string }>("SELECT key FROM rate_limit");
    expect(rows.length).toBeGreaterThan(0);
    for (const { key } of rows) {
      expect(key).toMatch(/^sign_in_backoff:[\w-]{43}$/);
      expect(key).not.toContain("dave");
    }
  });
});
