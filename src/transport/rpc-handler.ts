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
// - A unary call's request is not watched for the client going away (an
//   abort controller and two listeners per call): unary handlers never
//   watch their signal, and each ends within its deadline; a client that
//   goes away mid-call only misses the answer, and what the call did is
//   audited as usual. Streams (audit tail) keep a signal of their own, which
//   a departing client aborts.
// - A unary call in the Connect protocol over HTTP/1.1 (the native API's
//   common case: Connect JSON from a generated client, curl or a browser)
//   skips the universal handler altogether: `connectUnary` below runs the
//   same steps as connect-es's Connect handler (protocol-connect/
//   handler-factory.ts: content type, compression negotiation both ways,
//   read limits, timeout header, the interceptors, error JSON with its
//   status and metadata, trailers as `trailer-` headers), built from the
//   same exported pieces, but without what a unary call over one socket
//   never needs: the protocol negotiation, a handler context whose signals
//   are three linked abort controllers, four copies of the headers, and the
//   async-iterable plumbing between request, handler and response. Its
//   signal is made only if something reads it (`invokeUnary`); its
//   interceptors are applied once per method at start-up (`unaryChain`),
//   not on every call; its headers, request and response, are
//   RecordHeaders (./record-headers.ts), not Node's WebIDL-checked ones.
//   MintToken went from 1.228 to 1.163 times the CPU of the same mint on
//   /oauth/token (AEGIS_BENCH_PAIR, same run). Anything
//   else (GET requests, gRPC, gRPC-Web, streams, an RPC registered with
//   options of its own) takes the universal handler: the no-op RPC went
//   from 277 to 152 µs of CPU on the bench host (compare mode, same run).
//
// HTTP/2 requests and streaming responses take connect-node's own path.
// Connect's own handler also aborted every call's signal on success; that is
// patched in connect-es itself (patches/, README "Patched dependencies").
import { create, type DescMessage, type Message } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  type ConnectRouterOptions,
  type ContextValues,
  createConnectRouter,
  createServiceImplSpec,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import {
  compressionNegotiate,
  createDeadlineSignal,
  createLinkedAbortController,
  createMethodSerializationLookup,
  createMethodUrl,
  getAbortSignalReason,
  type MethodSerializationLookup,
  readAllBytes,
  type UniversalServerRequest,
  type UniversalServerResponse,
  validateUniversalHandlerOptions,
} from "@connectrpc/connect/protocol";
import {
  codeToHttpStatus,
  contentTypeUnaryJson,
  contentTypeUnaryProto,
  errorToJsonBytes,
  headerContentType,
  headerTimeout,
  headerUnaryAcceptEncoding,
  headerUnaryContentLength,
  headerUnaryEncoding,
  parseContentType,
  parseTimeout,
} from "@connectrpc/connect/protocol-connect";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import type { Logger } from "pino";
import type { NodeHandler, NodeServerRequest, NodeServerResponse } from "../core/http.js";
import { ifNoneMatchNames, isCacheable, strongEtag } from "./http-caching.js";
import { addNodeHeader, RecordHeaders } from "./record-headers.js";

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
  const routerOptions = { acceptCompression: [compressionGzip, compressionBrotli], ...options };
  const router = createConnectRouter(routerOptions);
  const connect = validateUniversalHandlerOptions(routerOptions);
  const unary = new Map<string, UnarySpec>();
  options.routes(recordingUnaryMethods(router, connect, unary));
  const handlers = new Map(router.handlers.map((handler) => [handler.requestPath, handler]));
  const lean = connect.requireConnectProtocolHeader ? undefined : connect;
  const signals = new CallSignals(options.shutdownSignal);

  return (req, res) => {
    const target = req.url ?? "";
    const query = target.indexOf("?");
    const path = query < 0 ? target : target.slice(0, query);
    const handler = handlers.get(path);
    if (!handler) return options.fallback(req, res);
    const values = options.contextValues(req);
    const spec = lean && !("stream" in req) && req.method === "POST" ? unary.get(path) : undefined;
    const type = spec ? parseContentType(req.headers["content-type"] ?? null) : undefined;
    if (spec && lean && type && !type.stream) {
      connectUnary(lean, spec, type.binary, req, res, values, signals).catch((reason: unknown) => {
        if (ConnectError.from(reason).code === Code.Aborted) return;
        options.log.error({ err: reason, rpc: path }, "rpc response failed");
      });
      return;
    }
    const universal =
      "stream" in req
        ? universalRequestFromNodeRequest(req, res, undefined, values)
        : http1Request(req, res, values, handler.method.methodKind === "unary" ? options.shutdownSignal : undefined);
    handler(universal)
      .then((response) => writeResponse(response, req, res))
      .catch((reason: unknown) => {
        // The client went away; there is nobody left to answer.
        if (ConnectError.from(reason).code === Code.Aborted) return;
        options.log.error({ err: reason, rpc: handler.requestPath }, "rpc response failed");
      });
  };
}

/**
 * The signals of the unary calls in flight: one abort controller each, all
 * aborted by one listener on the shutdown signal, instead of a listener
 * per call attached and detached on every call (connect links each call's
 * signal to the shutdown signal that way; it was a tenth of a no-op call).
 */
class CallSignals {
  readonly #open = new Set<AbortController>();

  constructor(private readonly shutdown: AbortSignal) {
    shutdown.addEventListener(
      "abort",
      () => {
        for (const call of this.#open) call.abort(getAbortSignalReason(shutdown));
        this.#open.clear();
      },
      { once: true },
    );
  }

  open(): AbortController {
    const call = new AbortController();
    if (this.shutdown.aborted) call.abort(getAbortSignalReason(this.shutdown));
    else this.#open.add(call);
    return call;
  }

  close(call: AbortController): void {
    this.#open.delete(call);
  }
}

/** A unary method's implementation, its interceptors applied, and its (de)serialisers, for `connectUnary`. */
interface UnarySpec {
  readonly spec: MethodImplSpec & { kind: "unary" };
  readonly chain: UnaryCall;
  readonly serialization: MethodSerializationLookup<DescMessage, DescMessage>;
}

type HandlerOptions = ReturnType<typeof validateUniversalHandlerOptions>;

/**
 * The router, recording the implementation of each unary method registered
 * without options of its own (those keep the universal handler, which
 * applies them).
 */
function recordingUnaryMethods(
  router: ConnectRouter,
  connect: HandlerOptions,
  unary: Map<string, UnarySpec>,
): ConnectRouter {
  const recording: ConnectRouter = {
    get handlers() {
      return router.handlers;
    },
    service(service, implementation, serviceOptions) {
      router.service(service, implementation, serviceOptions);
      if (serviceOptions) return recording;
      for (const spec of Object.values(createServiceImplSpec(service, implementation).methods)) {
        if (spec.kind !== "unary") continue;
        const serialization = createMethodSerializationLookup(
          spec.method,
          connect.binaryOptions,
          connect.jsonOptions,
          connect,
        );
        unary.set(createMethodUrl("/", spec.method), {
          spec,
          chain: unaryChain(spec, connect.interceptors),
          serialization,
        });
      }
      return recording;
    },
    rpc(...args: Parameters<ConnectRouter["rpc"]>) {
      router.rpc(...args);
      return recording;
    },
  } as ConnectRouter;
  return recording;
}

/**
 * The URL of a request, as connect-node makes it (`new URL(path, scheme://host)`):
 * put together without a parser when the Host is a plain host[:port] and
 * the target is origin-form, which is what a URL parser would return for
 * an RPC path.
 */
function requestUrl(req: NodeServerRequest): string {
  const scheme = "encrypted" in req.socket && req.socket.encrypted ? "https" : "http";
  const host = req.headers.host ?? "localhost";
  const target = req.url ?? "";
  if (plainHost.test(host) && plainTarget.test(target)) return `${scheme}://${host.toLowerCase()}${target}`;
  return new URL(target, `${scheme}://${host}`).toString();
}

const plainHost = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;
/** An RPC path (segments not starting with a dot) and at most a query of URL-safe characters. */
const plainTarget = /^(?:\/[A-Za-z0-9_-][A-Za-z0-9._-]*)+(?:\?[A-Za-z0-9._~%&=+-]*)?$/;

type LeanContext = HandlerContext & { readonly values: ContextValues };

/** Where the innermost step of a precomposed chain finds its call's context. */
const leanContextOf = Symbol("aegis.leanContext");

type UnaryCall = (req: UnaryRequest) => Promise<UnaryResponse>;

/**
 * connect-es's invokeUnaryImplementation (protocol/invoke-implementation.ts),
 * with its interceptors applied once per method, at start-up, instead of on
 * every call (connect composes the chain per call: a closure per interceptor,
 * each call). The innermost step finds the call's context on the request
 * (`leanContextOf`; a request an interceptor copies with a spread keeps it),
 * and the handler's `signal` is read from it when asked for, not copied.
 */
function unaryChain(spec: UnarySpec["spec"], interceptors: readonly Interceptor[]): UnaryCall {
  const handler: UnaryCall = async (req) => {
    const context = (req as UnaryRequest & { [leanContextOf]: LeanContext })[leanContextOf];
    const handlerContext: HandlerContext = {
      method: context.method,
      service: req.service,
      requestMethod: context.requestMethod,
      protocolName: context.protocolName,
      url: context.url,
      timeoutMs: context.timeoutMs,
      requestHeader: req.header,
      responseHeader: context.responseHeader,
      responseTrailer: context.responseTrailer,
      values: req.contextValues,
      get signal() {
        return req.signal;
      },
    };
    const output = await spec.impl(req.message as never, handlerContext);
    return {
      stream: false,
      message: create(spec.method.output, output as never),
      method: spec.method,
      service: spec.method.parent,
      header: context.responseHeader,
      trailer: context.responseTrailer,
    } as UnaryResponse;
  };
  let next = handler;
  for (let i = interceptors.length - 1; i >= 0; i--) {
    next = (interceptors[i] as Interceptor)(next as never) as UnaryCall;
  }
  return next;
}

async function invokeUnary(chain: UnaryCall, context: LeanContext, input: Message): Promise<Message> {
  const response = await chain({
    stream: false,
    message: input,
    method: context.method,
    service: context.service,
    requestMethod: context.requestMethod,
    url: context.url,
    header: context.requestHeader,
    contextValues: context.values,
    get signal() {
      return context.signal;
    },
    [leanContextOf]: context,
  } as UnaryRequest);
  copyHeaders(response.header, context.responseHeader);
  copyHeaders(response.trailer, context.responseTrailer);
  return response.message;
}

function copyHeaders(from: Headers, to: Headers): void {
  if (from === to) return;
  const names: string[] = [];
  to.forEach((_, name) => {
    names.push(name);
  });
  for (const name of names) to.delete(name);
  from.forEach((value, name) => {
    to.set(name, value);
  });
}

/**
 * One unary call of the Connect protocol, as connect-es's handler serves it
 * (protocol-connect/handler-factory.ts, createUnaryHandler), answered with
 * one write.
 */
async function connectUnary(
  opt: HandlerOptions,
  { spec, chain, serialization }: UnarySpec,
  binary: boolean,
  req: NodeServerRequest,
  res: NodeServerResponse,
  values: ContextValues,
  signals: CallSignals,
): Promise<void> {
  const header = new RecordHeaders(req.headers);
  const timeout = parseTimeout(header.get(headerTimeout), opt.maxTimeoutMs);
  // The call's signal: aborted with its error when it fails, at shutdown,
  // and at the client's deadline if it sent one. Made when first read (no
  // Aegis unary handler reads it): an AbortController is a tenth of a
  // no-op call.
  let call: AbortController | undefined;
  let deadline: ReturnType<typeof createDeadlineSignal> | undefined;
  let linked: AbortController | undefined;
  const signal = (): AbortSignal => {
    if (linked) return linked.signal;
    call = signals.open();
    if (timeout.timeoutMs === undefined) linked = call;
    else {
      deadline = createDeadlineSignal(timeout.timeoutMs);
      linked = createLinkedAbortController(deadline.signal, call.signal);
    }
    return linked.signal;
  };
  // A deadline must fire even when nothing reads the signal.
  if (timeout.timeoutMs !== undefined) signal();
  const due = timeout.timeoutMs === undefined ? undefined : Date.now() + timeout.timeoutMs;
  const responseHeader = new RecordHeaders([
    [headerContentType, binary ? contentTypeUnaryProto : contentTypeUnaryJson],
  ]);
  const responseTrailer = new RecordHeaders();
  const context: LeanContext = {
    method: spec.method,
    service: spec.method.parent,
    requestMethod: "POST",
    protocolName: "connect",
    url: requestUrl(req),
    get signal() {
      return signal();
    },
    timeoutMs: () => (due === undefined ? undefined : due - Date.now()),
    requestHeader: header,
    responseHeader,
    responseTrailer,
    values,
  };
  const compression = compressionNegotiate(
    opt.acceptCompression,
    header.get(headerUnaryEncoding),
    header.get(headerUnaryAcceptEncoding),
    headerUnaryAcceptEncoding,
  );
  let status = 200;
  let body: Uint8Array;
  try {
    if (compression.error) throw compression.error;
    if (timeout.error) throw timeout.error;
    let bytes = await readAllBytes(
      req as AsyncIterable<Uint8Array>,
      opt.readMaxBytes,
      header.get(headerUnaryContentLength),
    );
    if (compression.request) bytes = await compression.request.decompress(bytes, opt.readMaxBytes);
    const input = serialization.getI(binary).parse(bytes);
    const output = await invokeUnary(chain, context, input);
    body = serialization.getO(binary).serialize(output);
  } catch (thrown) {
    linked?.abort(thrown);
    const error =
      thrown instanceof ConnectError
        ? thrown
        : new ConnectError("internal error", Code.Internal, undefined, undefined, thrown);
    status = codeToHttpStatus(error.code);
    responseHeader.set(headerContentType, contentTypeUnaryJson);
    error.metadata.forEach((value, key) => {
      responseHeader.set(key, value);
    });
    body = errorToJsonBytes(error, opt.jsonOptions);
  } finally {
    if (call) signals.close(call);
    if (deadline) {
      deadline.cleanup();
      // Detaches from the call's signal without aborting (patched connect-es, see the top).
      (linked as AbortController & { release?: () => void }).release?.();
    }
  }
  if (compression.response && body.byteLength >= opt.compressMinBytes) {
    body = await compression.response.compress(body);
    responseHeader.set(headerUnaryEncoding, compression.response.name);
  }
  // Connect's trailerMux, into the object writeHead takes: trailers as `trailer-` headers.
  const headers: Record<string, string | string[]> = {};
  responseHeader.addTo(headers);
  responseTrailer.addTo(headers, "trailer-");
  headers[headerUnaryContentLength] = String(body.byteLength);
  res.writeHead(status, headers);
  res.end(body);
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
    header: new RecordHeaders(req.headers),
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

async function writeResponse(
  response: UniversalServerResponse,
  req: NodeServerRequest,
  res: NodeServerResponse,
): Promise<void> {
  if (!response.body || response.trailer || !response.header?.has("content-length")) {
    return universalResponseToNodeResponse(response, res);
  }
  const chunks: Uint8Array[] = [];
  for await (const chunk of response.body) chunks.push(chunk);
  const body = chunks.length === 1 ? (chunks[0] as Uint8Array) : Buffer.concat(chunks);
  const headers: Record<string, string | string[]> = {};
  response.header.forEach((value, name) => {
    addNodeHeader(headers, name, value);
  });
  // A Connect GET of a cacheable answer (http-caching.ts): validated by its ETag.
  if (req.method === "GET" && response.status === 200 && isCacheable(response.header.get("cache-control"))) {
    const etag = strongEtag(body);
    headers.etag = etag;
    if (ifNoneMatchNames(req.headers["if-none-match"], etag)) {
      // RFC 9110 §15.4.5: the headers a 200 would carry, without the content's own.
      delete headers["content-length"];
      delete headers["content-type"];
      delete headers["content-encoding"];
      res.writeHead(304, headers);
      res.end();
      return;
    }
  }
  res.writeHead(response.status, headers);
  res.end(body);
}
