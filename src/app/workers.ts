// Runs the broker as several processes on one port, so that one broker uses
// more than one core (a Node process runs its JavaScript on one). Node's
// cluster module shares the listening socket among the workers; each worker
// is a whole broker instance, just as several instances on one shared
// PostgreSQL are: caches and rate limits are per worker, and everything that
// decides correctness (revocations, replayed proofs, lease uses, the audit
// chain) lives in the database.
//
// With the embedded database the primary process owns the data directory: it
// applies migrations, then serves PGlite to the workers over a Unix socket
// (../db/pglite-server.ts), so the workers reach it exactly as they reach a
// PostgreSQL server. The primary answers no RPCs itself.
//
// Shutdown reaches the workers as a message, not a second signal: a terminal's
// Ctrl-C already signals every process of the group, and a second one still
// stops them at once. A worker that dies is replaced, unless workers keep
// dying.
import cluster, { type Worker } from "node:cluster";
import path from "node:path";
import type { Logger } from "pino";
import { type Config, embeddedWorkerVariable } from "../core/config.js";
import { embeddedRootKeyFile, loadRootKey } from "../crypto/root-key.js";
import { type Database, openEmbedded } from "../db/database.js";
import { migrate } from "../db/migrate.js";
import { type PgliteServer, servePglite } from "../db/pglite-server.js";
import { serveClusterMetrics } from "./cluster-metrics.js";

/** What a worker tells the primary, and the primary a worker. */
export type WorkerMessage = { readonly aegis: "listening"; readonly url: string } | { readonly aegis: "shutdown" };

export function isWorkerMessage(message: unknown): message is WorkerMessage {
  return typeof message === "object" && message !== null && "aegis" in message;
}

/** More unexpected worker exits than this within a minute stop the broker. */
const maxRestartsPerMinute = 5;

/** Runs `config.workers` broker processes until SIGTERM or SIGINT; resolves to the exit code. */
export async function runWorkers(config: Config, log: Logger): Promise<number> {
  const env: Record<string, string> = {};
  let embedded: { database: Database; server: PgliteServer } | undefined;
  // A missing or bad root key stops the broker here, once, not in every worker.
  loadRootKey(config, log);
  if (!config.databaseUrl) {
    // Workers reach the embedded database as a PostgreSQL server, and a broker
    // on one needs its root key given: the one this data directory keeps.
    if (config.rootKey === undefined && config.rootKeyFile === undefined) {
      env.AEGIS_ROOT_KEY_FILE = embeddedRootKeyFile(config);
    }
    const { database, lite } = await openEmbedded(config.dataDir, { log });
    const applied = await migrate(database);
    if (applied.length > 0) log.info({ migrations: applied }, "applied migrations");
    const server = await servePglite(lite, path.join(config.dataDir, "run"), log);
    embedded = { database, server };
    env.AEGIS_DATABASE_URL = server.url;
    env[embeddedWorkerVariable] = "1";
  }

  serveClusterMetrics();
  const workers = new Set<Worker>();
  let listening = 0;
  let stopping = false;
  let exitCode = 0;
  const restarts: number[] = [];
  let allExited: () => void = () => {};
  const exited = new Promise<void>((resolve) => {
    allExited = resolve;
  });

  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    log.info({ workers: workers.size }, "stopping broker workers");
    for (const worker of workers) if (worker.isConnected()) worker.send({ aegis: "shutdown" } satisfies WorkerMessage);
    // Each worker waits up to the grace period for its calls; past that and a margin, end them.
    setTimeout(() => {
      for (const worker of workers) worker.process.kill("SIGKILL");
    }, config.shutdownGraceMs + 10_000).unref();
    if (workers.size === 0) allExited();
  };

  const start = () => {
    const worker = cluster.fork(env);
    workers.add(worker);
    // A worker that is already stopping closes its channel; a message then fails to send, which is fine.
    worker.on("error", (error) => log.debug({ err: error, pid: worker.process.pid }, "broker worker channel error"));
    worker.on("message", (message: unknown) => {
      if (isWorkerMessage(message) && message.aegis === "listening" && ++listening === config.workers) {
        log.info({ url: message.url, workers: config.workers }, "aegis broker workers listening");
      }
    });
    worker.once("exit", (code, signal) => {
      workers.delete(worker);
      if (stopping) {
        if (code !== 0) exitCode ||= 1;
        if (workers.size === 0) allExited();
        return;
      }
      if (listening < config.workers) {
        // A worker that fails before the broker is up would fail again: stop, with its code.
        log.error({ code, signal }, "a broker worker failed to start");
        return stop(code || 1);
      }
      const now = Date.now();
      restarts.push(now);
      while ((restarts[0] ?? now) < now - 60_000) restarts.shift();
      if (restarts.length > maxRestartsPerMinute) {
        log.error({ code, signal }, "broker workers keep exiting; stopping");
        return stop(1);
      }
      log.error({ code, signal, pid: worker.process.pid }, "a broker worker exited; starting another");
      listening--;
      start();
    });
  };

  process.once("SIGTERM", () => stop(0));
  process.once("SIGINT", () => stop(0));
  for (let i = 0; i < config.workers; i++) start();
  await exited;
  if (embedded) {
    await embedded.server.close();
    await embedded.database.close();
  }
  log.info("shut down");
  return exitCode;
}
