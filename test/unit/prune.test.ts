// Housekeeping deletes what expired, in bounded batches, and nothing else.
import { afterEach, describe, expect, it } from "vitest";
import { migrate } from "../../src/db/migrate.js";
import { pruneExpired } from "../../src/db/prune.js";
import { createTestDatabase, databaseKinds, type TestDatabase } from "../support/databases.js";

describe.each(databaseKinds)("pruneExpired on %s", (kind) => {
  let db: TestDatabase;
  afterEach(() => db.drop());

  it("deletes every expired row, more than one batch of them, and keeps the live ones", async () => {
    db = await createTestDatabase(kind);
    await migrate(db.database);
    const prisma = db.database.prisma;
    const now = new Date("2026-12-01T12:00:00Z");
    const at = (seconds: number) => new Date(now.getTime() + seconds * 1000);
    const value = (key: string, expiresAt: Date) => ({ key, expiresAt });
    await prisma.replayGuard.createMany({
      data: [
        ...Array.from({ length: 25 }, (_, i) => value(`old-${i}`, at(-1 - i))),
        ...Array.from({ length: 3 }, (_, i) => value(`fresh-${i}`, at(60 + i))),
      ],
    });
    await prisma.revocationEvent.createMany({
      data: [
        { kind: "token", subject: "gone", expiresAt: at(-1) },
        { kind: "token", subject: "still", expiresAt: at(1) },
      ],
    });

    expect(await pruneExpired(prisma, "replay_guard", now, 10)).toBe(25);
    expect(await pruneExpired(prisma, "revocation_event", now, 10)).toBe(1);

    expect((await prisma.replayGuard.findMany({ orderBy: { key: "asc" } })).map((r) => r.key)).toEqual([
      "fresh-0",
      "fresh-1",
      "fresh-2",
    ]);
    expect((await prisma.revocationEvent.findMany()).map((r) => r.subject)).toEqual(["still"]);
  });
});
