// Starts a real broker on an ephemeral port over a test database, on a clock
// the test moves (clock.ts), and hands out clients for every protocol. Log
// lines are kept so tests can assert what was (and was not) logged.
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { Writable } from "node:stream";
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { type Broker, startBroker } from "../../src/app/broker.js";
import { type Config, loadConfig } from "../../src/core/config.js";
import { createLogger } from "../../src/core/log.js";
import { TestClock } from "./clock.js";
import { createTestDatabase, type DatabaseKind, type TestDatabase } from "./databases.js";

export type Protocol = "connect" | "grpc" | "grpc-web";
export const protocols: Protocol[] = ["connect", "grpc", "grpc-web"];

export interface TestBroker {
  readonly broker: Broker;
  readonly config: Config;
  readonly db: TestDatabase;
  /** The broker's clock: move it instead of sleeping. */
  readonly clock: TestClock;
  /** The bootstrap admin's API key. */
  readonly adminKey: string;
  /** Every log line written so far, raw JSON text. */
  readonly logs: string[];
  client<T extends DescService>(service: T, options?: { key?: string; protocol?: Protocol }): Client<T>;
  /** A transport sending `key` as the bearer credential; none when undefined. */
  transport(protocol: Protocol, key: string | undefined): Transport;
  stop(): Promise<void>;
}

/**
 * A broker on PostgreSQL must be given its public URL (config.ts), which in
 * a test is its own address: a free port is picked first and the URL names
 * it. Another process may take the port in between; then another is picked.
 */
async function startOnOwnUrl<T>(start: (address: Record<string, string>) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return await start({ AEGIS_PORT: String(port), AEGIS_PUBLIC_URL: `http://127.0.0.1:${port}` });
    } catch (error) {
      if (attempt >= 5 || (error as NodeJS.ErrnoException).code !== "EADDRINUSE") throw error;
    }
  }
}

/** A port nothing listens on now (the kernel's pick for port 0, released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

/**
 * `existing` is a database to share with another broker; `options.clock` a
 * clock to share too; `options.ownPublicUrl` configures the public URL as
 * the broker's own address on every database (PostgreSQL always does).
 */
export async function startTestBroker(
  kind: DatabaseKind,
  env: Record<string, string> = {},
  existing?: TestDatabase,
  options: { clock?: TestClock; ownPublicUrl?: boolean } = {},
): Promise<TestBroker> {
  const clock = options.clock ?? new TestClock();
  const db = existing ?? (await createTestDatabase(kind));
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const rootKey = randomBytes(32).toString("base64url");
  const start = async (address: Record<string, string>) => {
    const config = loadConfig({
      AEGIS_ROOT_KEY: rootKey,
      AEGIS_LOG_LEVEL: "info",
      ...address,
      ...(db.url ? { AEGIS_DATABASE_URL: db.url } : {}),
      ...env,
    });
    const log = createLogger(config.logLevel, sink);
    return { config, broker: await startBroker(config, { log, clock, database: db.database }) };
  };
  const { config, broker } = await ((db.url || options.ownPublicUrl) && !env.AEGIS_PUBLIC_URL
    ? startOnOwnUrl(start)
    : start({ AEGIS_PORT: "0" }));
  const adminKey = broker.bootstrap?.credential ?? "";
  const transport = (protocol: Protocol, key: string | undefined) => {
    const interceptors: Interceptor[] = key
      ? [
          (next) => (req) => {
            req.header.set("authorization", `Bearer ${key}`);
            return next(req);
          },
        ]
      : [];
    const baseUrl = broker.url;
    if (protocol === "grpc") return createGrpcTransport({ baseUrl, interceptors });
    if (protocol === "grpc-web") return createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors });
    return createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors });
  };
  return {
    broker,
    config,
    db,
    clock,
    adminKey,
    logs,
    transport,
    client: (service, options = {}) =>
      createClient(service, transport(options.protocol ?? "connect", "key" in options ? options.key : adminKey)),
    async stop() {
      await broker.close();
      if (!existing) await db.drop();
    },
  };
}
