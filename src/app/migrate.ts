// `aegis migrate`: apply pending migrations to the configured database and exit.
import type { Logger } from "pino";
import type { Config } from "../core/config.js";
import { openDatabase } from "../db/database.js";
import { migrate } from "../db/migrate.js";

export async function migrateDatabase(config: Config, log: Logger): Promise<void> {
  const db = await openDatabase(
    config.databaseUrl ? { kind: "postgres", url: config.databaseUrl } : { kind: "pglite", dataDir: config.dataDir },
  );
  try {
    const applied = await migrate(db);
    log.info({ applied }, applied.length ? "migrations applied" : "database is up to date");
  } finally {
    await db.close();
  }
}
