// Opens a PGlite database the way every part of Aegis needs it opened: the
// broker (src/db/database.ts) and the Prisma CLI (prisma.config.ts).
import { mkdirSync } from "node:fs";
import { PGlite } from "@electric-sql/pglite";

/**
 * PostgreSQL arms a startup-progress timer while it recovers a data directory
 * that was not shut down cleanly and, in PGlite's single-user backend, keeps
 * re-arming it every `log_startup_progress_interval` (10 s). Under Emscripten
 * that timer is a Node timeout, so the process never exits while the database
 * is open: the Prisma CLI, which never closes its adapter, hung for ever on
 * such a `data/` (and `npm ci` with it). The progress log is useless
 * in-process, so turn it off.
 */
const startParams = [...PGlite.defaultStartParams, "-c", "log_startup_progress_interval=0"];

/** A ready PGlite on `dataDir` (created, owner-only, if missing), or in memory when it is undefined. */
export function openPglite(dataDir: string | undefined): Promise<PGlite> {
  if (dataDir !== undefined) mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  return PGlite.create(dataDir, { startParams });
}
