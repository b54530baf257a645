// Health: the standard grpc.health.v1 service, and the plain HTTP probes
// (`/healthz`: the process is up; `/readyz`: it reaches its database and is
// not shutting down).
import type { NodeServerResponse } from "../core/http.js";
import { type BrokerModule, served } from "../core/module.js";
import { Health, HealthMonitor, healthService } from "./health-service.js";

export { Health, HealthMonitor };

export function healthModule(monitor: HealthMonitor, ping: () => Promise<boolean>, closing: AbortSignal): BrokerModule {
  const reply = (res: NodeServerResponse, status: number, body: object) => {
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify(body));
  };
  return {
    name: "health",
    services: [served(Health, healthService(monitor, closing))],
    routes: [
      { method: "GET", path: "/healthz", handle: async (_req, res) => reply(res, 200, { status: "ok" }) },
      {
        method: "GET",
        path: "/readyz",
        async handle(_req, res) {
          const ready = monitor.serving && (await ping());
          reply(res, ready ? 200 : 503, { status: ready ? "ready" : "not_ready" });
        },
      },
    ],
  };
}
