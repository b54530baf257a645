// Cross-origin requests from browsers (CORS, WHATWG Fetch §3.2), for the
// whole port: RPCs over Connect and gRPC-Web, and the OAuth, JWKS and
// metadata endpoints. One wrapper in front of everything else, configured by
// AEGIS_CORS_ALLOWED_ORIGINS (exact origins, none by default):
//
// - no `Origin` header (curl, generated clients, servers), the broker's own
//   origin, or `Origin: null` on a request the browser says comes from a
//   page of the same origin (`Sec-Fetch-Site: same-origin`, which no script
//   can set: the broker's pages send `Origin: null` with their no-referrer
//   policy): passed through untouched. "Same-origin" alone is not enough: a
//   DNS-rebinding page (attacker's name, resolved to the broker's address) is
//   same-origin to the browser, with its own origin in `Origin`;
// - DNS rebinding: with a configured public URL (AEGIS_PUBLIC_URL), a
//   browser's (`Origin` or `Sec-Fetch-*` present) state-changing request
//   (not GET, HEAD, OPTIONS) whose `Host` is not the public URL's host is
//   refused with 403 before anything runs: a rebinding page can hide its
//   origin behind `Origin: null`, never the name it was reached by;
// - a listed origin: a preflight is answered here (204, the methods and
//   headers Connect, gRPC-Web, DPoP and the broker use, cached for two
//   hours); an actual request is passed on, and its answer lets the page read
//   it and the headers those protocols need;
// - any other origin: refused with 403 before anything runs. A browser sends
//   "simple" requests (a form POST to /oauth/token, a Connect GET) without
//   asking first, so not answering with `Access-Control-Allow-Origin` alone
//   would still let them execute; refusing them here means a page of another
//   site can make the broker do nothing. `Origin: null` (sandboxed frames,
//   opaque documents) is another origin like any.
//
// Credentials in the CORS sense (cookies) are never allowed: the API takes
// its credentials in `Authorization` and `DPoP`, which a page sends as
// allowed headers, while the verification page's session cookie must stay
// out of other sites' reach.
import { cors as connectCors } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { NodeHandler, NodeServerRequest } from "../core/http.js";
import { requestIdHeader } from "./pipeline.js";

/** What a page may send: Connect's and gRPC-Web's headers, the credentials, a request id. */
export const corsAllowedHeaders: readonly string[] = [
  ...new Set([...connectCors.allowedHeaders, "authorization", "dpop", "x-request-id"].map((h) => h.toLowerCase())),
];

/**
 * What a page may read besides the safelisted headers: gRPC-Web's status
 * and error details, the request id, the DPoP nonce (RFC 9449 §8), the
 * challenge of a refused credential (RFC 6750 §3), rate-limit pauses, and
 * the validator of cacheable answers.
 */
export const corsExposedHeaders: readonly string[] = [
  ...new Set(
    [
      ...connectCors.exposedHeaders,
      "connect-accept-encoding",
      requestIdHeader,
      "x-request-id",
      "dpop-nonce",
      "www-authenticate",
      "retry-after",
      "etag",
    ].map((h) => h.toLowerCase()),
  ),
];

/** How long a browser may reuse a preflight's answer (Chromium caps it at two hours). */
export const corsMaxAgeSeconds = 7_200;

export interface CorsOptions {
  /** The origins listed in AEGIS_CORS_ALLOWED_ORIGINS. */
  readonly allowedOrigins: readonly string[];
  /** The broker's public URL: its own origin is always allowed. */
  readonly publicUrl: string;
  /** The public URL was configured (not derived from the bound address): `Host` must name it. */
  readonly publicUrlGiven: boolean;
  readonly log: Logger;
}

/** `next` behind the CORS rules above. */
export function withCors(options: CorsOptions, next: NodeHandler): NodeHandler {
  const self = new URL(options.publicUrl).origin;
  const allowed = new Set(options.allowedOrigins);
  const allowMethods = connectCors.allowedMethods.join(", ");
  const allowHeaders = corsAllowedHeaders.join(", ");
  const exposeHeaders = corsExposedHeaders.join(", ");
  const publicUrl = options.publicUrlGiven ? new URL(options.publicUrl) : undefined;
  const refuse = (req: NodeServerRequest, res: Parameters<NodeHandler>[1], error: string) => {
    const origin = req.headers.origin ?? "";
    const host = req.headers.host ?? "";
    options.log.info(
      { origin: origin.slice(0, 200), host: host.slice(0, 200), method: req.method, path: pathOf(req), error },
      "cors refused",
    );
    res.writeHead(403, { "content-type": "application/json", "cache-control": "no-store", vary: "Origin" });
    res.end(JSON.stringify({ error }));
  };
  return (req, res) => {
    const origin = req.headers.origin;
    const site = req.headers["sec-fetch-site"];
    // Answers differ by origin once any is listed: caches must keep them apart.
    if (allowed.size > 0) res.setHeader("vary", "Origin");
    const browser = origin !== undefined || site !== undefined;
    if (publicUrl !== undefined && browser && !safeMethods.has(req.method ?? "") && !sameHost(req, publicUrl)) {
      return refuse(req, res, "host_not_allowed");
    }
    if (origin === undefined || origin === self || (origin === "null" && site === "same-origin")) {
      return next(req, res);
    }
    const preflight = req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
    if (!allowed.has(origin)) return refuse(req, res, "origin_not_allowed");
    res.setHeader("access-control-allow-origin", origin);
    if (preflight) {
      const headers: Record<string, string> = {
        "access-control-allow-origin": origin,
        "access-control-allow-methods": allowMethods,
        "access-control-allow-headers": allowHeaders,
        "access-control-max-age": String(corsMaxAgeSeconds),
        vary: "Origin",
        "content-length": "0",
      };
      // Private Network Access: a listed site may reach a broker on a private address.
      if (req.headers["access-control-request-private-network"] === "true") {
        headers["access-control-allow-private-network"] = "true";
      }
      res.writeHead(204, headers);
      res.end();
      return;
    }
    res.setHeader("access-control-expose-headers", exposeHeaders);
    return next(req, res);
  };
}

const safeMethods = new Set(["GET", "HEAD", "OPTIONS"]);

/** Whether the request's `Host` names the public URL's host (normalised: case, default port). */
function sameHost(req: NodeServerRequest, publicUrl: URL): boolean {
  const host = req.headers.host;
  if (!host) return false;
  try {
    return new URL(`${publicUrl.protocol}//${host}`).host === publicUrl.host;
  } catch {
    return false;
  }
}

function pathOf(req: NodeServerRequest): string {
  return (req.url ?? "/").split("?")[0]?.slice(0, 200) ?? "/";
}
