// `GET /metrics`: this instance's Prometheus metrics (core/metrics.ts).
//
// Two ways to serve it, as Vault and Keycloak do:
//
// - AEGIS_METRICS_ADDRESS set: on a listener of its own (Keycloak's
//   management interface), without authentication, and not on the main
//   port at all. The operator binds it where only the scraper reaches it.
// - unset: on the main port, to callers holding the elevated grant only
//   (Vault's `sys/metrics` wants a token unless told otherwise). Metrics say
//   how busy the broker is, which calls fail and how often limits refuse:
//   reconnaissance for an attacker, so the public port does not hand them
//   to strangers. A failed authentication counts against the same limit as
//   every other way in; a refusal is audited like a refused private RPC.
import type { Authenticator } from "../auth/authenticate.js";
import { readCredentials } from "../auth/authenticate.js";
import type { FailedAuthentications } from "../auth/failed-authentications.js";
import type { AuditTrail } from "../core/audit.js";
import type { CallOrigin } from "../core/call.js";
import { type Caller, isElevated } from "../core/caller.js";
import { DomainError, permissionDenied, unauthenticated } from "../core/errors/domain-error.js";
import { toOAuthError } from "../core/errors/oauth-error.js";
import { presentedScheme, resourceChallenges } from "../core/errors/www-authenticate.js";
import type { NodeServerRequest, NodeServerResponse } from "../core/http.js";
import type { BrokerMetrics } from "../core/metrics.js";
import type { BrokerModule, HttpRoute } from "../core/module.js";
import { dpopAlgorithms } from "../protocol/dpop.js";

export const metricsPath = "/metrics";
/** The action a refused scrape is audited under (no RPC has it; nobody is granted it but through the elevated grant). */
const metricsAction = "broker.metrics.read";

export interface MetricsGuard {
  readonly authenticator: Authenticator;
  readonly authFailures: FailedAuthentications;
  readonly audit: AuditTrail;
  readonly publicUrl: string;
}

/**
 * The metrics module of the main listener: `/metrics` for elevated callers,
 * or nothing when the metrics have a listener of their own (`separate`).
 */
export function metricsModule(metrics: BrokerMetrics, guard: MetricsGuard, separate: boolean): BrokerModule {
  return { name: "metrics", routes: separate ? [] : [metricsRoute(metrics, guard)] };
}

/** `GET /metrics`; open to anyone who reaches it when no guard is given (the separate listener). */
export function metricsRoute(metrics: BrokerMetrics, guard?: MetricsGuard): HttpRoute {
  return {
    method: "GET",
    path: metricsPath,
    async handle(req, res, call) {
      if (guard) {
        try {
          await elevatedCaller(guard, req, call);
        } catch (error) {
          return refuse(res, req, error);
        }
      }
      const { contentType, body } = await metrics.exposition();
      res.writeHead(200, { "content-type": contentType, "cache-control": "no-store" });
      res.end(body);
    },
  };
}

async function elevatedCaller(guard: MetricsGuard, req: NodeServerRequest, call: CallOrigin): Promise<Caller> {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (typeof value === "string" && !name.startsWith(":")) headers.set(name, value);
  }
  const credentials = { method: "GET", url: `${guard.publicUrl}${metricsPath}` };
  let caller: Caller | undefined;
  try {
    caller = await guard.authFailures.check(call.clientAddress, async () => {
      const found = await guard.authenticator.authenticate(readCredentials(headers, credentials));
      if (!found && headers.has("authorization")) throw unauthenticated("credential not recognised");
      return found;
    });
    if (!caller) throw unauthenticated("no credential presented");
    if (!isElevated(caller)) throw permissionDenied("ELEVATED_GRANT_REQUIRED", "metrics need the elevated grant");
    return caller;
  } catch (error) {
    if (error instanceof DomainError && error.code !== "resource_exhausted") {
      await guard.audit.denied(
        {
          requestId: call.requestId,
          tenantId: caller?.tenantId ?? null,
          actorId: caller?.principalId ?? null,
          client: call.client,
        },
        metricsAction,
        "",
        error,
      );
    }
    throw error;
  }
}

function refuse(res: NodeServerResponse, req: NodeServerRequest, error: unknown): void {
  const challenge = { presented: presentedScheme(req.headers.authorization), dpopAlgorithms };
  const out = toOAuthError(error, challenge);
  const headers = { ...out.headers };
  if (out.status === 401 && error instanceof DomainError)
    headers["www-authenticate"] = resourceChallenges(error, challenge);
  res.writeHead(out.status, { "content-type": "application/json", "cache-control": "no-store", ...headers });
  res.end(JSON.stringify(out.body));
}
