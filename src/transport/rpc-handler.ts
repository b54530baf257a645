// The broker's Node.js adapter for its Connect router: what connect-node's
// `connectNodeAdapter` does, built from the same public pieces
// (`createConnectRouter`, `universalRequestFromNodeRequest`,
// `universalResponseToNodeResponse`), minus two costs that profiles showed on
// every call (a no-op RPC went from 193 to 157 µs of CPU on the bench host):
//
// - connect-node aborts each HTTP/1.1 request's signal when the response
//   closes, also after a normal finish, and an abort without a reason builds
//   a DOMException with a stack trace. Here the signal is aborted only when
//   the client goes away before the response is complete.
// - A unary response (Connect sets its content-length) is written with one
//   `end(body)`: one socket write, no per-chunk promises and listeners.
// - A unary call gets no signal of its own (an abort controller and two
//   listeners per call): its signal is the shutdown signal. Unary handlers
//   never watch their signal, and each ends within its deadline; a client
//   that goes away mid-call only misses the answer, and what the call did is
//   audited as usual. Streams (audit tail) keep a signal of their own, which
//   a departing client aborts.
//
// HTTP/2 requests and streaming responses take connect-node's own path.
// Connect's own handler also aborted every call's signal on success; that is
// patched in connect-es itself (patches/, README "Patched dependencies").
import type { IncomingHttpHeaders } from "node:http";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  type ConnectRouterOptions,
  type ContextValues,
  createConnectRouter,
} from "@connectrpc/connect";
import type { UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import type { Logger } from "pino";
import type { NodeHandler, NodeServerRequest, NodeServerResponse } from "../core/http.js";

export interface RpcHandlerOptions extends ConnectRouterOptions {
  readonly routes: (router: ConnectRouter) => void;
  readonly contextValues: (req: NodeServerRequest) => ContextValues;
  /** Serves every path that is not an RPC. */
  readonly fallback: NodeHandler;
  readonly log: Logger;
  /** Required here (optional for Connect): unary calls take it as their signal. */
  readonly shutdownSignal: AbortSignal;
}

export function rpcHandler(options: RpcHandlerOptions): NodeHandler {
  const router = createConnectRouter({ acceptCompression: [compressionGzip, compressionBrotli], ...options });
  options.routes(router);
  const handlers = new Map(router.handlers.map((handler) => [handler.requestPath, handler]));

  return (req, res) => {
    const target = req.url ?? "";
    const query = target.indexOf("?");
    const handler = handlers.get(query < 0 ? target : target.slice(0, query));
    if (!handler) return options.fallback(req, res);
    const values = options.contextValues(req);
    const universal =
      "stream" in req
        ? universalRequestFromNodeRequest(req, res, undefined, values)
        : http1Request(req, res, values, handler.method.methodKind === "unary" ? options.shutdownSignal : undefined);
    handler(universal)
      .then((response) => writeResponse(response, res))
      .catch((reason: unknown) => {
        // The client went away; there is nobody left to answer.
        if (ConnectError.from(reason).code === Code.Aborted) return;
        options.log.error({ err: reason, rpc: handler.requestPath }, "rpc response failed");
      });
  };
}

function http1Request(
  req: NodeServerRequest,
  res: NodeServerResponse,
  values: ContextValues,
  signal: AbortSignal | undefined,
): UniversalServerRequest {
  const encrypted = "encrypted" in req.socket && req.socket.encrypted;
  return {
    httpVersion: req.httpVersion,
    method: req.method ?? "",
    url: new URL(req.url ?? "", `${encrypted ? "https" : "http"}://${req.headers.host ?? "localhost"}`).toString(),
    header: webHeaders(req.headers),
    body: req as AsyncIterable<Uint8Array>,
    signal: signal ?? clientSignal(req, res),
    contextValues: values,
  };
}

/** Aborted when the client goes away before the response is complete. */
function clientSignal(req: NodeServerRequest, res: NodeServerResponse): AbortSignal {
  const abort = new AbortController();
  const onClose = () => {
    req.off("error", onError);
    if (!res.writableFinished) abort.abort(new ConnectError("the client closed the connection", Code.Canceled));
  };
  const onError = (error: Error) => {
    res.off("close", onClose);
    abort.abort(ConnectError.from(error, Code.Aborted));
  };
  // The request emits "close" once its body is read; the response closes when the exchange ends.
  res.once("close", onClose);
  req.once("error", onError);
  return abort.signal;
}

/** The same conversion as connect-node's: every value of every field, in order. */
function webHeaders(headers: IncomingHttpHeaders): Headers {
  const result = new Headers();
  for (const name in headers) {
    const value = headers[name];
    if (typeof value === "string") result.append(name, value);
    else if (value !== undefined) for (const item of value) result.append(name, item);
  }
  return result;
}

async function writeResponse(response: UniversalServerResponse, res: NodeServerResponse): Promise<void> {
  if (!response.body || response.trailer || !response.header?.has("content-length")) {
    return universalResponseToNodeResponse(response, res);
  }
  const chunks: Uint8Array[] = [];
  for await (const chunk of response.body) chunks.push(chunk);
  const headers: Record<string, string> = {};
  response.header.forEach((value, name) => {
    headers[name] = value;
  });
  res.writeHead(response.status, headers);
  res.end(chunks.length === 1 ? (chunks[0] as Uint8Array) : Buffer.concat(chunks));
}
