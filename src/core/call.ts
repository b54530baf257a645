// Who is calling and from where, one shape for RPCs and HTTP routes alike:
// set by the pipeline (interceptors for RPCs, the HTTP router for routes) and
// read by handlers (`callOf(ctx)`, `callerOf(ctx)`, `callSite(...)`).
import { type ContextValues, createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { AuditBase } from "./audit.js";
import type { Caller } from "./caller.js";

/** Where a call came from: the same for an RPC and an HTTP request. */
export interface CallOrigin {
  readonly requestId: string;
  /** Client address and user agent, for audit. */
  readonly client: string;
  /** Client address alone, for rate limits (the peer's, or what a trusted proxy forwarded). */
  readonly clientAddress: string;
  /**
   * The scheme the client used (a trusted proxy's `X-Forwarded-Proto` /
   * `Forwarded: proto`, else the listener's); undefined: unknown. Not named
   * `scheme`: call sites are spread into credentials, whose `scheme` is the
   * Authorization scheme.
   */
  readonly clientProtocol?: "http" | "https";
}

/** An RPC in flight: its origin, and its caller once authentication succeeded. */
export interface CallInfo extends CallOrigin {
  /** Set once authentication succeeded (absent for anonymous calls). */
  caller: Caller | undefined;
}

/** What DPoP, rate limits and audit need of a call that authenticates its client itself. */
export interface CallSite extends CallOrigin {
  readonly method: string;
  /** Public URL of the endpoint (DPoP `htu`). */
  readonly url: string;
  readonly headers: Headers;
}

export const callKey = createContextKey<CallInfo | undefined>(undefined, { description: "aegis call" });

export function callOf(ctx: HandlerContext | { values: ContextValues }): CallInfo {
  const call = ctx.values.get(callKey);
  if (!call) throw new Error("call context missing: interceptors not installed");
  return call;
}

/** The caller of an authenticated RPC (the interceptor guarantees it exists). */
export function callerOf(ctx: HandlerContext): Caller {
  const caller = callOf(ctx).caller;
  if (!caller) throw new Error("handler of an authenticated RPC ran without a caller");
  return caller;
}

/** An audit entry for this call, to complete with action, target and outcome. */
export function auditBase(ctx: HandlerContext): AuditBase {
  const call = callOf(ctx);
  return {
    requestId: call.requestId,
    tenantId: call.caller?.tenantId ?? null,
    actorId: call.caller?.principalId ?? null,
    client: call.client,
  };
}

/**
 * The public URL of the endpoint a request reached: the configured public
 * base URL plus the request path. DPoP `htu` is checked against this, never
 * against the Host header a client controls (RFC 9449 §4.3).
 */
export function publicUrlOf(publicUrl: string, requestUrl: string): string {
  // Every RPC asks, some twice: an absolute URL whose path has only plain
  // segments (an RPC path: no dot segments, nothing to percent-encode)
  // needs no URL parser to yield the path it would (see call.test.ts).
  const plain = plainPath.exec(requestUrl);
  return `${publicUrl}${plain ? plain[1] : new URL(requestUrl, publicUrl).pathname}`;
}

/** `scheme://authority` then a path of segments that do not start with a dot, then the end, `?` or `#`. */
const plainPath = /^https?:\/\/[^/?#\\]*((?:\/[A-Za-z0-9_-][A-Za-z0-9._-]*)+)(?:[?#]|$)/;

/** The site of an RPC: its origin, method, public URL and headers. */
export function callSite(publicUrl: string, call: HandlerContext): CallSite {
  const info = callOf(call);
  return {
    requestId: info.requestId,
    client: info.client,
    clientAddress: info.clientAddress,
    ...(info.clientProtocol ? { clientProtocol: info.clientProtocol } : {}),
    method: call.requestMethod,
    url: publicUrlOf(publicUrl, call.url),
    headers: call.requestHeader,
  };
}
