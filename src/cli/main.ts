// The `aegis` command. `serve` runs the broker (what `npm start` does);
// `migrate` applies database migrations and exits; `root-key generate`
// prints a fresh root key for AEGIS_ROOT_KEY; `key` and `credential` seal
// and open credentials on this machine (see credential-commands.ts).
import cluster from "node:cluster";
import { writeFileSync } from "node:fs";
import type { Logger } from "pino";
import type { BootstrapResult } from "../bootstrap/bootstrap.js";
import { type Config, ConfigError, loadConfig } from "../config.js";
import { generateRootKeyText } from "../crypto/root-key.js";
import { openDatabase } from "../db/database.js";
import { migrate } from "../db/migrate.js";
import { createLogger } from "../log.js";
import { startBroker } from "../server/broker.js";
import { isWorkerMessage, runWorkers, type WorkerMessage } from "../server/workers.js";
import { credentialCommand, credentialUsage, keyCommand, UsageError } from "./credential-commands.js";
import { loginCommand, loginUsage, logoutCommand, whoamiCommand } from "./login-commands.js";

const usage = `aegis – credential broker for AI agents

Usage:
  aegis serve               run the broker (configuration from AEGIS_* variables; see README)
  aegis migrate             apply pending database migrations and exit
  aegis root-key generate   print a new random root key for AEGIS_ROOT_KEY
  aegis help                show this text
${loginUsage}${credentialUsage}`;

async function main(argv: string[]): Promise<number> {
  const [command, sub] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(usage);
    return 0;
  }
  if (command === "root-key" && sub === "generate") {
    process.stdout.write(`${generateRootKeyText()}\n`);
    return 0;
  }
  if (argv.includes("--help")) {
    process.stdout.write(usage);
    return 0;
  }
  if (command === "key") return keyCommand(argv.slice(1));
  if (command === "login") return loginCommand(argv.slice(1));
  if (command === "whoami") return whoamiCommand();
  if (command === "logout") return logoutCommand();
  if (command === "credential") return credentialCommand(argv.slice(1));
  const config = loadConfig();
  const root = createLogger(config.logLevel);
  // Several broker processes write to one output: each line says which wrote it.
  const log = cluster.worker ? root.child({ worker: cluster.worker.id, pid: process.pid }) : root;
  if (command === "migrate") {
    const db = await openDatabase(
      config.databaseUrl ? { kind: "postgres", url: config.databaseUrl } : { kind: "pglite", dataDir: config.dataDir },
    );
    try {
      const applied = await migrate(db);
      log.info({ applied }, applied.length ? "migrations applied" : "database is up to date");
    } finally {
      await db.close();
    }
    return 0;
  }
  if (command === "serve") {
    if (config.workers > 1 && cluster.isPrimary) return runWorkers(config, log);
    await serve(config, log);
    return 0;
  }
  process.stderr.write(`aegis: unknown command "${argv.join(" ")}"\n\n${usage}`);
  return 2;
}

/** Runs one broker in this process (alone, or as a worker) until a signal or the supervisor says stop. */
async function serve(config: Config, log: Logger): Promise<void> {
  const broker = await startBroker(config, { log });
  if (broker.bootstrap) announceBootstrap(config, broker.bootstrap);
  if (cluster.isWorker) process.send?.({ aegis: "listening", url: broker.url } satisfies WorkerMessage);
  await new Promise<void>((resolve) => {
    const stop = (why: string) => {
      log.info({ why }, "stopping");
      broker.close().then(resolve, (error) => {
        log.error({ err: error }, "shutdown failed");
        resolve();
      });
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
    if (cluster.isWorker) {
      process.on("message", (message) => {
        if (isWorkerMessage(message) && message.aegis === "shutdown") stop("supervisor");
      });
    }
  });
  // A worker's channel to the supervisor would keep this process alive.
  if (cluster.isWorker) process.disconnect?.();
}

/**
 * The one-time admin credential goes to the operator, never to the log: to a
 * 0600 file when AEGIS_BOOTSTRAP_CREDENTIAL_FILE is set, else to stdout.
 */
function announceBootstrap(config: Config, result: BootstrapResult): void {
  if (config.bootstrapCredentialFile) {
    writeFileSync(config.bootstrapCredentialFile, `${result.credential}\n`, { mode: 0o600, flag: "wx" });
    process.stdout.write(`Bootstrap admin credential written to ${config.bootstrapCredentialFile} (shown once).\n`);
    return;
  }
  process.stdout.write(
    [
      "",
      "================================================================",
      " First start: created tenant 'operators' and its admin.",
      " Admin API key (shown ONCE; store it in a password manager):",
      "",
      `   ${result.credential}`,
      "",
      " Use it as:  Authorization: Bearer <key>",
      "================================================================",
      "",
    ].join("\n"),
  );
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`aegis: ${error.message}\n\n${usage}`);
      process.exitCode = 2;
    } else if (error instanceof ConfigError) {
      process.stderr.write(`aegis: configuration error: ${error.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`aegis: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    }
  },
);
