import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { migrate, readMigrations } from "../../src/db/migrate.js";
import { createTestDatabase, databaseKinds, type TestDatabase } from "../support/databases.js";

describe.each(databaseKinds)("migrate on %s", (kind) => {
  let db: TestDatabase | undefined;
  afterEach(async () => {
    await db?.drop();
    db = undefined;
  });

  it("applies every migration once, recording Prisma-compatible checksums", async () => {
    db = await createTestDatabase(kind);
    const migrations = readMigrations();
    expect(await migrate(db.database)).toEqual(migrations.map((m) => m.name));
    expect(await migrate(db.database)).toEqual([]);
    const rows = await db.database.prisma.$queryRaw<{ migration_name: string; checksum: string }[]>`
      SELECT migration_name, checksum FROM "_prisma_migrations" ORDER BY migration_name`;
    expect(rows).toEqual(
      migrations.map((m) => ({ migration_name: m.name, checksum: createHash("sha256").update(m.sql).digest("hex") })),
    );
  });

  it("refuses a migration changed after it was applied", async () => {
    db = await createTestDatabase(kind);
    const migrations = readMigrations();
    await migrate(db.database, migrations);
    const changed = migrations.map((m, i) => (i === 0 ? { ...m, checksum: "0".repeat(64) } : m));
    await expect(migrate(db.database, changed)).rejects.toThrow(/was changed after it was applied/);
  });

  it("refuses a database migrated by a newer release", async () => {
    db = await createTestDatabase(kind);
    const migrations = readMigrations();
    await migrate(db.database, [
      ...migrations,
      { name: "99990101000000_future", sql: "SELECT 1;", checksum: "f".repeat(64) },
    ]);
    await expect(migrate(db.database, migrations)).rejects.toThrow(/newer version/);
  });

  it("rolls back a failing migration completely", async () => {
    db = await createTestDatabase(kind);
    const broken = {
      name: "00000000000000_broken",
      sql: "CREATE TABLE half_done (id int); SELECT nonsense;",
      checksum: "a".repeat(64),
    };
    await expect(migrate(db.database, [broken])).rejects.toThrow(/migration 00000000000000_broken failed/);
    const tables = await db.database.prisma.$queryRaw<unknown[]>`SELECT 1 FROM pg_tables WHERE tablename = 'half_done'`;
    expect(tables).toEqual([]);
  });
});
