import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { databaseReplayGuard } from "../../src/auth/replay-guard.js";
import { migrate } from "../../src/db/migrate.js";
import { createTestDatabase, databaseKinds, type TestDatabase } from "../support/databases.js";

describe.each(databaseKinds)("replay guard on %s", (kind) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase(kind);
    await migrate(db.database);
  });
  afterAll(() => db.drop());

  const soon = () => new Date(Date.now() + 60_000);

  it("lets exactly one of 50 concurrent claims of one value through", async () => {
    const guard = databaseReplayGuard(db.database);
    const results = await Promise.all(Array.from({ length: 50 }, () => guard.claim("dpop", "jkt:jti-1", soon())));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await guard.claim("dpop", "jkt:jti-1", soon())).toBe(false);
  });

  it("lets distinct values and other namespaces through, and is shared by every instance", async () => {
    const a = databaseReplayGuard(db.database);
    const b = databaseReplayGuard(db.database);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => a.claim("dpop", `v${i}`, soon())));
    expect(results.every(Boolean)).toBe(true);
    expect(await a.claim("assertion", "v1", soon())).toBe(true);
    expect(await b.claim("dpop", "v3", soon())).toBe(false);
  });

  it("forgets expired values when pruned", async () => {
    const guard = databaseReplayGuard(db.database);
    expect(await guard.claim("dpop", "old", new Date(Date.now() - 1000))).toBe(true);
    expect(await guard.prune(new Date())).toBeGreaterThanOrEqual(1);
    expect(await guard.claim("dpop", "old", soon())).toBe(true);
  });
});
