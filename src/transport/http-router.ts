// Everything on the port that is not an RPC: the routes the modules declare
// (OAuth endpoints, well-known metadata, the device flow's pages, health),
// and 404 for anything else. Every request gets what an RPC gets from the
// interceptors: a request id (response header), one JSON log line naming
// the RPC the route stands for, a failure logged with its cause and
// answered without it, and the same metrics. A route that is the HTTP face
// of an RPC (SharedPolicyRoute) also passes the RPC's policy step
// (pipeline.ts, `servedUnderSharedPolicy`): it cannot drift from its twin.
// With tracing on, each request is a server span (./tracing.ts).
import type { DescMethod } from "@bufbuild/protobuf";
import type { Validator } from "@bufbuild/protovalidate";
import type { Logger } from "pino";
import type { CallOrigin } from "../core/call.js";
import { fromDatabaseError } from "../core/errors/database-error.js";
import { DomainError } from "../core/errors/domain-error.js";
import type { NodeServerRequest, NodeServerResponse } from "../core/http.js";
import type { BrokerMetrics } from "../core/metrics.js";
import type { HttpRoute, SharedPolicyRoute } from "../core/module.js";
import { idsOf, type Tracing } from "../core/tracing.js";
import { callOrigins, type OriginOf } from "./call-origin.js";
import { type PolicyDeps, servedUnderSharedPolicy } from "./pipeline.js";
import { RecordHeaders } from "./record-headers.js";
import { endHttpSpan, startHttpSpan } from "./tracing.js";

export interface HttpRouterDeps extends PolicyDeps {
  readonly log: Logger;
  /** The RPCs' request rules, for the requests the shared-policy routes stand for. */
  readonly validator: Validator;
  /** Who is calling from where (trusted proxies); the socket's peer when absent. */
  readonly originOf?: OriginOf;
  readonly metrics?: Pick<BrokerMetrics, "httpStarted">;
  readonly tracing?: Tracing;
}

export function httpRouter(routes: readonly HttpRoute[], deps: HttpRouterDeps) {
  const { log, originOf = callOrigins([]), metrics, tracing } = deps;
  const byPath = new Map<string, HttpRoute[]>();
  for (const route of routes) byPath.set(route.path, [...(byPath.get(route.path) ?? []), route]);
  // `/prefix/*` routes take any path below the prefix that no exact route takes.
  const prefixes = [...byPath.keys()].filter((p) => p.endsWith("/*")).map((p) => p.slice(0, -1));
  const routesFor = (path: string): HttpRoute[] => {
    const exact = byPath.get(path);
    if (exact) return exact;
    const prefix = prefixes.find((p) => path.startsWith(p));
    return prefix ? (byPath.get(`${prefix}*`) ?? []) : [];
  };

  return async (req: NodeServerRequest, res: NodeServerResponse): Promise<void> => {
    const started = performance.now();
    const origin: CallOrigin = originOf(req);
    res.setHeader("aegis-request-id", origin.requestId);
    if (req.headers["x-request-id"] === origin.requestId) res.setHeader("x-request-id", origin.requestId);
    const path = (req.url ?? "/").split("?")[0]?.slice(0, 200) ?? "/";
    const candidates = routesFor(path);
    const route = candidates.find((r) => r.method === req.method);
    let rpc: DescMethod | undefined = route?.shares;
    // Labelled by the declared path only: a path no route has is one "unmatched" series, not one per path tried.
    const measured = metrics?.httpStarted(candidates[0]?.path, req.method);
    const span = tracing && startHttpSpan(tracing, req, candidates[0]?.path);
    res.once("close", () => {
      measured?.(res.statusCode);
      if (span) endHttpSpan(span, res.statusCode);
    });
    res.once("finish", () => {
      const ms = Math.round((performance.now() - started) * 10) / 10;
      const procedure = rpc ? `${rpc.parent.typeName}/${rpc.name}` : undefined;
      log.info(
        {
          requestId: origin.requestId,
          method: req.method,
          path,
          procedure,
          status: res.statusCode,
          ms,
          ...(span && idsOf(span)),
        },
        "http",
      );
    });
    return span && tracing ? tracing.within(span, serve) : serve();

    async function serve(): Promise<void> {
      try {
        if (route?.shares) {
          return await serveShared(route, req, res, origin, (method) => {
            rpc = method;
          });
        }
        if (route) return await route.handle(req, res, origin);
        if (candidates.length > 0) {
          return reply(
            res,
            405,
            { error: "method_not_allowed" },
            { allow: candidates.map((r) => r.method).join(", ") },
          );
        }
        reply(res, 404, { error: "not_found" });
      } catch (error) {
        log.error({ err: error, requestId: origin.requestId, method: req.method, path }, "http route failed");
        if (res.headersSent) res.destroy();
        else reply(res, 500, { error: "server_error" });
      }
    }
  };

  async function serveShared(
    route: SharedPolicyRoute,
    req: NodeServerRequest,
    res: NodeServerResponse,
    origin: CallOrigin,
    standsFor: (method: DescMethod) => void,
  ): Promise<void> {
    const headers = new RecordHeaders(req.headers);
    const site = { ...origin, headers, method: req.method ?? "", url: `${deps.publicUrl}${route.path}` };
    try {
      const request = await route.read(req);
      standsFor(request.rpc ?? route.shares);
      await servedUnderSharedPolicy(deps, route, request, site, (call) => route.serve(res, call, request.decoded));
    } catch (thrown) {
      const error = fromDatabaseError(thrown) ?? thrown;
      // A refusal is the caller's; anything else is ours: logged with its
      // cause, answered by the route's generic failure.
      if (!(error instanceof DomainError)) {
        log.error({ err: error, requestId: origin.requestId, path: route.path }, "http route failed");
      }
      if (res.headersSent) res.destroy();
      else await route.refuse(req, res, error);
    }
  }
}

function reply(res: NodeServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", ...headers });
  res.end(JSON.stringify(body));
}
