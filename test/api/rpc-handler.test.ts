// The broker's RPC handler over a real HTTP/1.1 server, with a router of its
// own so a test can see the handler context. It also pins down what the
// patch to connect-es (patches/, connect-es#1117) must keep true: a call
// that succeeds ends without firing its signal and leaves no listener on the
// shutdown signal; a call that fails still aborts its signal with the error.
import { getEventListeners } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, createClient, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
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
