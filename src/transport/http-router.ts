// Everything on the port that is not an RPC: liveness, readiness, the OAuth
// endpoints, the device flow's verification page, and 404 for anything else.
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { NodeServerRequest, NodeServerResponse } from "../core/http.js";
import type { Database } from "../db/database.js";
import { type PageDeps, verificationPage } from "../device/verification-page.js";
import type { HealthMonitor } from "../health/health-service.js";
import { handleOAuth, type OAuthDeps } from "../oauth/oauth-routes.js";

export function clientOf(req: NodeServerRequest): string {
  const agent = String(req.headers["user-agent"] ?? "").slice(0, 120);
  return `${req.socket?.remoteAddress ?? "unknown"} ${agent}`.trim();
}

export function httpRoutes(deps: {
  health: HealthMonitor;
  database: Database;
  oauth: OAuthDeps;
  page: PageDeps;
  log: Logger;
}) {
  const verification = verificationPage(deps.page);
  const route = async (req: NodeServerRequest, res: NodeServerResponse, site: Site): Promise<void> => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/healthz") return reply(res, 200, { status: "ok" });
    if (req.method === "GET" && path === "/readyz") {
      const ready = deps.health.serving && (await deps.database.ping());
      return reply(res, ready ? 200 : 503, { status: ready ? "ready" : "not_ready" });
    }
    if (await handleOAuth(deps.oauth, req, res, site)) return;
    if (await verification(req, res, site)) return;
    reply(res, 404, { error: "not_found" });
  };
  // Every request gets a request id and one log line, as an RPC does; a
  // failure is logged with its cause and answered with a bare server_error.
  return async (req: NodeServerRequest, res: NodeServerResponse): Promise<void> => {
    const started = performance.now();
    const site = {
      requestId: `req_${randomUUID()}`,
      client: clientOf(req),
      clientAddress: req.socket?.remoteAddress ?? "unknown",
    };
    res.setHeader("aegis-request-id", site.requestId);
    const path = (req.url ?? "/").split("?")[0]?.slice(0, 200);
    res.once("finish", () => {
      const ms = Math.round((performance.now() - started) * 10) / 10;
      deps.log.info({ requestId: site.requestId, method: req.method, path, status: res.statusCode, ms }, "http");
    });
    try {
      await route(req, res, site);
    } catch (error) {
      deps.log.error({ err: error, requestId: site.requestId, method: req.method, path }, "http route failed");
      if (res.headersSent) res.destroy();
      else reply(res, 500, { error: "server_error" });
    }
  };
}

type Site = { readonly requestId: string; readonly client: string; readonly clientAddress: string };

function reply(res: NodeServerResponse, status: number, body: object): void {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify(body));
}
