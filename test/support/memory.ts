// The in-memory tier: the whole broker (modules, interceptor pipeline,
// policies, a real PGlite in memory) behind `createRouterTransport`, with no
// socket and no listener. Fast enough to walk every RPC of every service.
import { randomBytes, randomUUID } from "node:crypto";
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient, createRouterTransport, type Interceptor } from "@connectrpc/connect";
import { type AssembledBroker, assembleBroker } from "../../src/app/broker.js";
import { callKey } from "../../src/core/call.js";
import { loadConfig } from "../../src/core/config.js";
import { createLogger } from "../../src/core/log.js";
import { openDatabase } from "../../src/db/database.js";

export interface MemoryBroker {
  readonly broker: AssembledBroker;
  /** The bootstrap admin's API key. */
  readonly adminKey: string;
  /** A client of `service` sending `key` as its Bearer credential (none when undefined). */
  client<T extends DescService>(service: T, key?: string): Client<T>;
  stop(): Promise<void>;
}

export async function startMemoryBroker(env: Record<string, string> = {}): Promise<MemoryBroker> {
  const database = await openDatabase({ kind: "pglite", dataDir: undefined });
  const config = loadConfig({
    AEGIS_ROOT_KEY: randomBytes(32).toString("base64url"),
    AEGIS_PUBLIC_URL: "http://aegis.memory.test",
    ...env,
  });
  const broker = await assembleBroker(config, { log: createLogger("silent"), database });
  // What the listener's context values give every call over a socket.
  const origin: Interceptor = (next) => (req) => {
    req.contextValues.set(callKey, {
      requestId: `req_${randomUUID()}`,
      client: "memory",
      clientAddress: "memory",
      caller: undefined,
    });
    return next(req);
  };
  return {
    broker,
    adminKey: broker.bootstrap?.credential ?? "",
    client(service, key) {
      const bearer: Interceptor = (next) => (req) => {
        if (key) req.header.set("authorization", `Bearer ${key}`);
        return next(req);
      };
      const transport = createRouterTransport(broker.routes, {
        router: { interceptors: [origin, ...broker.interceptors] },
        transport: { interceptors: [bearer] },
      });
      return createClient(service, transport);
    },
    async stop() {
      broker.stopServing();
      await broker.close();
      await database.close();
    },
  };
}
