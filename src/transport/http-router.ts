// Everything on the port that is not an RPC: the routes the modules declare
// (OAuth endpoints, well-known metadata, the device flow's pages, health),
// and 404 for anything else. Every request gets what an RPC gets from the
// interceptors: a request id (response header), one JSON log line naming
// the RPC the route shares its policy with, and a failure logged with its
// cause and answered with a bare server_error.
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { NodeServerRequest, NodeServerResponse } from "../core/http.js";
import type { HttpRoute } from "../core/module.js";

export function clientOf(req: NodeServerRequest): string {
  const agent = String(req.headers["user-agent"] ?? "").slice(0, 120);
  return `${req.socket?.remoteAddress ?? "unknown"} ${agent}`.trim();
}

export function httpRouter(routes: readonly HttpRoute[], log: Logger) {
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
    const origin = {
      requestId: `req_${randomUUID()}`,
      client: clientOf(req),
      clientAddress: req.socket?.remoteAddress ?? "unknown",
    };
    res.setHeader("aegis-request-id", origin.requestId);
    const path = (req.url ?? "/").split("?")[0]?.slice(0, 200) ?? "/";
    const candidates = routesFor(path);
    const route = candidates.find((r) => r.method === req.method);
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
