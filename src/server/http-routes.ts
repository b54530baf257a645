// Everything on the port that is not an RPC: liveness, readiness, the OAuth
// endpoints, the device flow's verification page, and 404 for anything else.
import { randomUUID } from "node:crypto";
import type { Database } from "../db/database.js";
import { type PageDeps, verificationPage } from "../device/verification-page.js";
import type { HealthMonitor } from "../health/health-service.js";
import { handleOAuth, type OAuthDeps } from "../oauth/oauth-routes.js";
import type { NodeServerRequest, NodeServerResponse } from "./node-http.js";

export function clientOf(req: NodeServerRequest): string {
  const agent = String(req.headers["user-agent"] ?? "").slice(0, 120);
  return `${req.socket?.remoteAddress ?? "unknown"} ${agent}`.trim();
}

export function httpRoutes(deps: { health: HealthMonitor; database: Database; oauth: OAuthDeps; page: PageDeps }) {
  const verification = verificationPage(deps.page);
  return async (req: NodeServerRequest, res: NodeServerResponse): Promise<void> => {
    const reply = (status: number, body: object) => {
      res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(JSON.stringify(body));
    };
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/healthz") return reply(200, { status: "ok" });
    if (req.method === "GET" && path === "/readyz") {
      const ready = deps.health.serving && (await deps.database.ping());
      return reply(ready ? 200 : 503, { status: ready ? "ready" : "not_ready" });
    }
    const site = {
      requestId: `req_${randomUUID()}`,
      client: clientOf(req),
      clientAddress: req.socket?.remoteAddress ?? "unknown",
    };
    res.setHeader("aegis-request-id", site.requestId);
    if (await handleOAuth(deps.oauth, req, res, site)) return;
    if (await verification(req, res, site)) return;
    reply(404, { error: "not_found" });
  };
}
