// `aegis serve`, `aegis migrate`, `aegis root-key generate` and `aegis hsm
// init-key`: the commands an operator runs where the broker lives. Their configuration comes from
// AEGIS_* variables (config.ts), read only once a command really runs, so
// `--help` touches no data directory, database or port.
import cluster from "node:cluster";
import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import type { Logger } from "pino";
import {
  type BootstrapResult,
  type Config,
  ConfigError,
  createLogger,
  generateRootKeyText,
  initPkcs11Key,
  loadConfig,
  type WorkerMessage,
} from "../app/index.js";
import { ConfigurationFailure, ReportedFailure } from "./failures.js";

// The broker's own modules (Prisma, PGlite, the servers) are imported when
// serve or migrate runs, not with this module: they take most of a second
// to load, which `--help` and the client commands need not wait for.

const configurationHelp = `
Configuration (environment variables; the README lists them all):
  AEGIS_HOST, AEGIS_PORT   where to listen (default 127.0.0.1:8080)
  AEGIS_DATA_DIR           the embedded database and its generated root key (default ./data)
  AEGIS_DATABASE_URL       postgres://… to use PostgreSQL instead (needs AEGIS_ROOT_KEY;
                           serve also needs AEGIS_PUBLIC_URL, the one URL of every instance)
  AEGIS_PUBLIC_URL         the URL clients use (token issuer, DPoP); the load balancer's
  AEGIS_ROOT_KEY           root key, 32 random bytes in base64url (aegis root-key generate)
  AEGIS_ROOT_OF_TRUST      what wraps KMS key material: local (default) or pkcs11 (AEGIS_PKCS11_*)
  AEGIS_LOG_LEVEL          fatal, error, warn, info (default), debug, trace or silent`;

export function addServerCommands(program: Command): void {
  program
    .command("serve")
    .summary("run the broker")
    .description("Run the broker until SIGTERM or SIGINT, applying pending migrations first.")
    .addHelpText(
      "after",
      `${configurationHelp}
  AEGIS_WORKERS            broker processes sharing the port (default 1; auto: one per core)
  AEGIS_BOOTSTRAP_CREDENTIAL_FILE
                           on the first start, write the admin API key to this file (0600)
                           instead of printing it to stderr

Examples:
  $ aegis serve
  $ AEGIS_PORT=9000 AEGIS_DATA_DIR=/var/lib/aegis aegis serve`,
    )
    .action(configFailures(serveCommand));

  program
    .command("migrate")
    .summary("apply pending database migrations and exit")
    .description("Apply pending database migrations and exit (serve also applies them when it starts).")
    .addHelpText(
      "after",
      `${configurationHelp}

Examples:
  $ aegis migrate
  $ AEGIS_DATABASE_URL=postgres://aegis@db/aegis AEGIS_ROOT_KEY_FILE=/etc/aegis/root.key aegis migrate`,
    )
    .action(configFailures(migrateCommand));

  const rootKey = program
    .command("root-key")
    .summary("make root keys")
    .description("Make root keys (AEGIS_ROOT_KEY).")
    .addHelpText("after", "\nExample:\n  $ aegis root-key generate");
  rootKey
    .command("generate")
    .summary("print a new random root key")
    .description("Print a new random root key (32 bytes, base64url) for AEGIS_ROOT_KEY or AEGIS_ROOT_KEY_FILE.")
    .addHelpText(
      "after",
      `
Examples:
  $ aegis root-key generate
  $ (umask 077; aegis root-key generate > /etc/aegis/root.key)`,
    )
    .action(() => {
      process.stdout.write(`${generateRootKeyText()}\n`);
    });

  const hsm = program
    .command("hsm")
    .summary("set up the PKCS#11 root of trust")
    .description("Set up the PKCS#11 token that wraps KMS key material (AEGIS_ROOT_OF_TRUST=pkcs11).")
    .addHelpText("after", "\nExample:\n  $ aegis hsm init-key");
  hsm
    .command("init-key")
    .summary("create the token's AES-256 key unless it has one")
    .description(
      "Create the AES-256 key labelled AEGIS_PKCS11_KEY_LABEL in the token (sensitive, never extractable, " +
        "encrypt/decrypt only) unless it has one already; either way check that the key can be the root of trust.",
    )
    .addHelpText(
      "after",
      `
Configuration (environment variables; the README's "Hardware root of trust" has a trial):
  AEGIS_ROOT_OF_TRUST=pkcs11
  AEGIS_PKCS11_MODULE      the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so
  AEGIS_PKCS11_TOKEN_LABEL the token (or AEGIS_PKCS11_SLOT, its slot id)
  AEGIS_PKCS11_PIN_FILE    file holding the user PIN (or AEGIS_PKCS11_PIN)
  AEGIS_PKCS11_KEY_LABEL   label of the key to create or check

Examples:
  $ aegis hsm init-key
  $ AEGIS_PKCS11_KEY_LABEL=aegis-root-of-trust-2 aegis hsm init-key`,
    )
    .action(
      configFailures(async () => {
        const { created, hsmToken, keyLabel } = await initPkcs11Key(loadConfig());
        process.stdout.write(
          created
            ? `created AES-256 key "${keyLabel}" on token ${hsmToken}\n`
            : `token ${hsmToken} already has key "${keyLabel}"; left as it is\n`,
        );
      }),
    );
}

/** The broker's ConfigError as the CLI's ConfigurationFailure (exit 2, "configuration error: …"). */
function configFailures(action: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await action();
    } catch (error) {
      if (error instanceof ConfigError) throw new ConfigurationFailure(error.message, { cause: error });
      throw error;
    }
  };
}

function brokerLogger(config: Config): Logger {
  const root = createLogger(config.logLevel);
  // Several broker processes write to one output: each line says which wrote it.
  return cluster.worker ? root.child({ worker: cluster.worker.id, pid: process.pid }) : root;
}

async function migrateCommand(): Promise<void> {
  const config = loadConfig(process.env, "migrate");
  const log = brokerLogger(config);
  const { migrateDatabase } = await import("../app/migrate.js");
  await migrateDatabase(config, log);
}

async function serveCommand(): Promise<void> {
  const config = loadConfig(process.env, cluster.isWorker ? "worker" : "serve");
  const log = brokerLogger(config);
  if (config.workers > 1 && cluster.isPrimary) {
    const { runWorkers } = await import("../app/workers.js");
    const code = await runWorkers(config, log);
    if (code !== 0) throw new ReportedFailure(code);
    return;
  }
  await serve(config, log);
}

/** Runs one broker in this process (alone, or as a worker) until a signal or the supervisor says stop. */
async function serve(config: Config, log: Logger): Promise<void> {
  const [{ startBroker }, { isWorkerMessage }] = await Promise.all([
    import("../app/broker.js"),
    import("../app/workers.js"),
  ]);
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
 * 0600 file when AEGIS_BOOTSTRAP_CREDENTIAL_FILE is set, else to the terminal
 * on stderr. The JSON log is stdout, which log shippers collect: a banner
 * there would be a stray non-JSON line, and the key would be kept with the logs.
 */
function announceBootstrap(config: Config, result: BootstrapResult): void {
  if (config.bootstrapCredentialFile) {
    writeFileSync(config.bootstrapCredentialFile, `${result.credential}\n`, { mode: 0o600, flag: "wx" });
    process.stderr.write(`Bootstrap admin credential written to ${config.bootstrapCredentialFile} (shown once).\n`);
    return;
  }
  process.stderr.write(
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
