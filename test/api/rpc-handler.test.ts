// The broker's RPC handler over a real HTTP/1.1 server, with a router of its
// own so a test can see the handler context. It also pins down what the
// patch to connect-es (patches/, connect-es#1117) must keep true: a call
// that succeeds ends without firing its signal and leaves no listener on the
// shutdown signal; a call that fails still aborts its signal with the error.
import { getEventListeners } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import {
  Code,
  ConnectError,
  createClient,
  createContextValues,
  type HandlerContext,
  type ServiceImpl,
} from "@connectrpc/connect";
import {
  compressionBrotli,
  compressionGzip,
  connectNodeAdapter,
  createConnectTransport,
} from "@connectrpc/connect-node";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/proto/grpc/health/v1/health_pb.js";
import type { NodeServerResponse } from "../../src/core/http.js";
import { rpcHandler } from "../../src/transport/rpc-handler.js";

/** A server of the health service implemented by `check`, and a client of it. */
async function serve(shutdownSignal: AbortSignal, check: ServiceImpl<typeof Health>["check"]) {
  const handler = rpcHandler({
    log: pino({ level: "silent" }),
    shutdownSignal,
    contextValues: () => undefined as never,
    fallback: (_req, res: NodeServerResponse) => {
      res.writeHead(404);
      res.end();
    },
    routes: (router) => router.service(Health, { check }),
  });
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    client: createClient(Health, createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "1.1" })),
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

describe("rpcHandler", () => {
  const shutdown = new AbortController();
  const seen: AbortSignal[] = [];
  let served: Awaited<ReturnType<typeof serve>>;

  beforeAll(async () => {
    served = await serve(shutdown.signal, (request, context: HandlerContext) => {
      seen.push(context.signal);
      if (request.service === "fail") throw new ConnectError("refused", Code.FailedPrecondition);
      return { status: HealthCheckResponse_ServingStatus.SERVING };
    });
  });

  afterAll(async () => {
    shutdown.abort();
    await served.close();
  });

  it("ends a successful call without aborting its signal, and detaches it from the shutdown signal", async () => {
    const before = getEventListeners(shutdown.signal, "abort").length;
    for (let i = 0; i < 20; i++) await served.client.check({});
    const signals = seen.splice(0);
    expect(signals).toHaveLength(20);
    expect(signals.filter((signal) => signal.aborted)).toEqual([]);
    expect(getEventListeners(shutdown.signal, "abort").length).toBe(before);
  });

  it("aborts a failed call's signal with its error, and detaches it too", async () => {
    const before = getEventListeners(shutdown.signal, "abort").length;
    await expect(served.client.check({ service: "fail" })).rejects.toMatchObject({ code: Code.FailedPrecondition });
    const [signal] = seen.splice(0);
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toMatchObject({ code: Code.FailedPrecondition, rawMessage: "refused" });
    expect(getEventListeners(shutdown.signal, "abort").length).toBe(before);
  });

  it("still aborts a call in flight at shutdown", async () => {
    const local = new AbortController();
    const other = await serve(local.signal, async (_request, context: HandlerContext) => {
      local.abort(new ConnectError("shutting down", Code.Unavailable));
      expect(context.signal.aborted).toBe(true);
      throw context.signal.reason;
    });
    try {
      await expect(other.client.check({})).rejects.toMatchObject({ code: Code.Unavailable });
    } finally {
      await other.close();
    }
  });
});

/**
 * The broker's lean unary path against connect-node's own adapter: the same
 * service behind both, the same raw requests to each, the same answers
 * (status, Connect headers, body) for what a Connect client may send.
 */
describe("rpcHandler's unary Connect path answers as connect-node does", () => {
  const check: ServiceImpl<typeof Health>["check"] = (request, context) => {
    context.responseHeader.set("x-seen", context.requestHeader.get("x-probe") ?? "");
    context.responseTrailer.set("x-trailer", "t");
    if (request.service.startsWith("fail")) {
      throw new ConnectError(`refused ${request.service}`, Code.FailedPrecondition, { "x-error-meta": "m" });
    }
    return { status: HealthCheckResponse_ServingStatus.SERVING };
  };
  const options = { readMaxBytes: 4096, acceptCompression: [compressionGzip, compressionBrotli] };
  let ours: string;
  let theirs: string;
  const servers: http.Server[] = [];
  beforeAll(async () => {
    const shutdown = new AbortController();
    const listen = async (handler: http.RequestListener) => {
      const server = http.createServer(handler);
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    };
    ours = await listen(
      rpcHandler({
        ...options,
        log: pino({ level: "silent" }),
        shutdownSignal: shutdown.signal,
        contextValues: () => createContextValues(),
        fallback: (_req, res: NodeServerResponse) => {
          res.writeHead(404);
          res.end();
        },
        routes: (router) => router.service(Health, { check }),
      }) as http.RequestListener,
    );
    theirs = await listen(
      connectNodeAdapter({ ...options, routes: (router) => router.service(Health, { check }) }) as http.RequestListener,
    );
  });
  afterAll(() => Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve)))));

  const json = (body: unknown) => JSON.stringify(body);
  const path = "/grpc.health.v1.Health/Check";
  const cases: [string, Record<string, string>, Buffer | string][] = [
    ["JSON", { "content-type": "application/json", "x-probe": "p" }, json({ service: "" })],
    ["JSON with charset", { "content-type": "application/json; charset=utf-8" }, json({})],
    ["binary", { "content-type": "application/proto" }, Buffer.alloc(0)],
    ["an error with metadata", { "content-type": "application/json" }, json({ service: "fail" })],
    [
      "a long error, gzip accepted",
      { "content-type": "application/json", "accept-encoding": "gzip" },
      json({ service: `fail${"x".repeat(2000)}` }),
    ],
    [
      "a gzip request",
      { "content-type": "application/json", "content-encoding": "gzip" },
      gzipSync(json({ service: "fail-z" })),
    ],
    ["an unknown request encoding", { "content-type": "application/json", "content-encoding": "zstd" }, json({})],
    ["a bad timeout", { "content-type": "application/json", "connect-timeout-ms": "soon" }, json({})],
    ["a timeout", { "content-type": "application/json", "connect-timeout-ms": "5000" }, json({})],
    ["a body over the limit", { "content-type": "application/json" }, json({ service: "y".repeat(5000) })],
    ["malformed JSON", { "content-type": "application/json" }, "{"],
    ["an unknown field", { "content-type": "application/json" }, json({ nope: 1 })],
    ["an unsupported content type", { "content-type": "text/plain" }, "hello"],
    ["a streaming content type", { "content-type": "application/connect+json" }, json({})],
  ];
  it.each(cases)("for %s", async (_name, headers, body) => {
    const answer = async (base: string) => {
      const res = await fetch(`${base}${path}`, {
        method: "POST",
        headers,
        body: typeof body === "string" ? body : new Blob([new Uint8Array(body)]),
      });
      const seen: Record<string, string> = {};
      for (const name of ["content-type", "content-encoding", "x-seen", "trailer-x-trailer", "x-error-meta"]) {
        const value = res.headers.get(name);
        if (value !== null) seen[name] = value;
      }
      return { status: res.status, headers: seen, body: await res.text() };
    };
    const [a, b] = [await answer(ours), await answer(theirs)];
    expect(a).toEqual(b);
  });
});
