// openPglite (src/db/pglite.ts): a process that opens an existing embedded
// database and never closes it, as the Prisma CLI does, must still exit,
// even when the last one to use it was killed and PostgreSQL has to recover.
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

const module = fileURLToPath(new URL("../../src/db/pglite.ts", import.meta.url));

it("lets the process exit with an existing data directory left open", async () => {
  const dir = path.join(mkdtempSync(path.join(tmpdir(), "aegis-pglite-open-")), "pglite");
  // The first creates the database and the second recovers it; neither closes.
  expect(await openAndLeave(dir)).toEqual({ code: 0, signal: null });
  expect(await openAndLeave(dir)).toEqual({ code: 0, signal: null });
});

/** Runs a process that opens `dir`, queries it and leaves it open. */
async function openAndLeave(dir: string) {
  const script = `const { openPglite } = await import(${JSON.stringify(module)});
    const db = await openPglite(${JSON.stringify(dir)});
    await db.query("SELECT 1");`;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: "inherit" });
  // A hang is for ever (PostgreSQL's startup-progress timer re-arms itself);
  // the watchdog is far beyond the second or two the process needs.
  const watchdog = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on("exit", (...exit) => resolve(exit)),
  );
  clearTimeout(watchdog);
  return { code, signal };
}
