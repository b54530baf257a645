// The `aegis` command as a child process, as an operator runs it.
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { vi } from "vitest";

// The package's own executable, in this process's Node: one process, so
// signals reach the broker itself. (tsx's CLI runs the script in a child,
// relays signals to it and kills it outright when it has not reacted within
// 30 ms, as when its event loop is busy with a database statement.)
const bin = path.resolve("src/cli/bin.mjs");

export interface RunningCli {
  readonly child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  stdout(): string;
  stderr(): string;
  readonly exit: Promise<number | null>;
  /** The exit code, once the output is complete too (stdout and stderr closed). */
  readonly closed: Promise<number | null>;
}

/**
 * Starts `aegis ...args` with info-level logs. `detached` gives it its own
 * process group, so `process.kill(-pid)` ends it with every process it started.
 */
export function runAegis(
  args: string[],
  env: Record<string, string>,
  options: { detached?: boolean } = {},
): RunningCli {
  const child = spawn(process.execPath, [bin, ...args], {
    detached: options.detached ?? false,
    env: { ...process.env, AEGIS_LOG_LEVEL: "info", ...env },
  });
  let output = "";
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => {
    output += d;
    stdout += d;
  });
  child.stderr?.on("data", (d) => {
    output += d;
    stderr += d;
  });
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const closed = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  return { child, output: () => output, stdout: () => stdout, stderr: () => stderr, exit, closed };
}

/** Resolves once `predicate` holds; rejects after `ms`. */
export async function waitFor(predicate: () => boolean, ms = 30_000): Promise<void> {
  await vi.waitFor(
    () => {
      if (!predicate()) throw new Error(`timed out waiting (${ms} ms)`);
    },
    { timeout: ms, interval: 50 },
  );
}
