// Everything on the port that is not an RPC: the routes the modules declare
// (OAuth endpoints, well-known metadata, the device flow's pages, health),
// and 404 for anything else. Every request gets what an RPC gets from the
// interceptors: a request id (response header), one JSON log line naming
// the RPC the route shares its policy with, and a failure logged with its
// cause and answered with a bare server_error; and the same metrics.
import type { Logger } from "pino";
import type { NodeServerRequest, NodeServerResponse } from "../core/http.js";
import type { BrokerMetrics } from "../core/metrics.js";
import type { HttpRoute } from "../core/module.js";
import { callOrigins, type OriginOf } from "./call-origin.js";

export function httpRouter(
  routes: readonly HttpRoute[],
  log: Logger,
  originOf: OriginOf = callOrigins([]),
  metrics?: Pick<BrokerMetrics, "httpStarted">,
) {
  const byPath = new Map<string, HttpRoute[]>();
  for (const route of routes) byPath.set(route.path, [...(byPath.get(route.path) ?? []), route]);

  return async (req: NodeServerRequest, res: NodeServerResponse): Promise<void> => {
    const started = performance.now();
    const origin = originOf(req);
    res.setHeader("aegis-request-id", origin.requestId);
    if (req.headers["x-request-id"] === origin.requestId) res.setHeader("x-request-id", origin.requestId);
    const path = (req.url ?? "/").split("?")[0]?.slice(0, 200) ?? "/";
    const candidates = byPath.get(path) ?? [];
    const route = candidates.find((r) => r.method === req.method);
    // Labelled by the declared path only: a path no route has is one "unmatched" series, not one per path tried.
    const measured = metrics?.httpStarted(candidates.length > 0 ? path : undefined, req.method);
    res.once("close", () => measured?.(res.statusCode));
    res.once("finish", () => {
      const ms = Math.round((performance.now() - started) * 10) / 10;
      const procedure = route?.shares ? `${route.shares.parent.typeName}/${route.shares.name}` : undefined;
      log.info(
        { requestId: origin.requestId, method: req.method, path, procedure, status: res.statusCode, ms },
        "http",
      );
    });
    try {
      if (route) return await route.handle(req, res, origin);
      if (candidates.length > 0) {
        return reply(res, 405, { error: "method_not_allowed" }, { allow: candidates.map((r) => r.method).join(", ") });
      }
      reply(res, 404, { error: "not_found" });
    } catch (error) {
      log.error({ err: error, requestId: origin.requestId, method: req.method, path }, "http route failed");
      if (res.headersSent) res.destroy();
      else reply(res, 500, { error: "server_error" });
    }
  };
}

function reply(res: NodeServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", ...headers });
  res.end(JSON.stringify(body));
}
