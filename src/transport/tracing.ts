// What the pipeline tells the tracer (core/tracing.ts), when tracing is on:
// a server span per RPC from an interceptor placed before every other, so
// it covers the whole chain on every path (the Connect unary fast path of
// rpc-handler.ts runs the same interceptors), named and described by the
// OTel RPC conventions (`rpc.system.name`, `rpc.method`, `rpc.status_code`);
// what the policy step learnt of the call (`callAttributes`: procedure,
// action, target, tenant, principal kind) for RPCs and HTTP routes alike;
// the HTTP conventions for the routes (http-router.ts).
//
// A refusal (any code but OK, any HTTP status from 400) marks the span
// failed, with the code and the reason from the closed union of reasons:
// in a broker, who was refused is what a trace is read for.
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor, type StreamResponse } from "@connectrpc/connect";
import type { Attributes, Span } from "@opentelemetry/api";
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_RPC_METHOD,
  ATTR_RPC_STATUS_CODE,
  ATTR_RPC_SYSTEM_NAME,
  RPC_SYSTEM_NAME_VALUE_GRPC,
} from "@opentelemetry/semantic-conventions";
import type { Caller } from "../core/caller.js";
import { reasonOf } from "../core/errors/connect-error.js";
import { endSpan, type IncomingHeaders, type Tracing } from "../core/tracing.js";
import { policyOf } from "../policy/method-policy.js";

/** The server span of every RPC; installed only when tracing is on (broker.ts). */
export function traceCalls(tracing: Tracing): Interceptor {
  return (next) => async (req) => {
    const procedure = `${req.service.typeName}/${req.method.name}`;
    const span = tracing.startServer(procedure, req.header, {
      [ATTR_RPC_SYSTEM_NAME]: req.header.get("content-type")?.startsWith("application/grpc")
        ? RPC_SYSTEM_NAME_VALUE_GRPC
        : "connectrpc",
      [ATTR_RPC_METHOD]: procedure,
    });
    try {
      const res = await tracing.within(span, () => next(req));
      if (!res.stream) {
        endRpcSpan(span, undefined);
        return res;
      }
      return { ...res, message: endingWith(res.message, span) } as StreamResponse;
    } catch (error) {
      endRpcSpan(span, error);
      throw error;
    }
  };
}

/** A stream's span ends with the stream (its end, its error, or its client leaving). */
async function* endingWith<T>(messages: AsyncIterable<T>, span: Span): AsyncIterable<T> {
  let error: unknown;
  try {
    yield* messages;
  } catch (thrown) {
    error = thrown;
    throw thrown;
  } finally {
    endRpcSpan(span, error);
  }
}

function endRpcSpan(span: Span, error: unknown): void {
  if (error === undefined) {
    span.setAttribute(ATTR_RPC_STATUS_CODE, "OK");
    endSpan(span, undefined);
    return;
  }
  const connectError = ConnectError.from(error);
  const code = statusName(connectError.code);
  const reason = reasonOf(connectError);
  span.setAttributes({ [ATTR_RPC_STATUS_CODE]: code, "aegis.reason": reason });
  endSpan(span, { code, message: reason });
}

/** `PermissionDenied` → `PERMISSION_DENIED`: the status names gRPC and the conventions use. */
function statusName(code: Code): string {
  return (Code[code] ?? "UNKNOWN").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** The server span of an HTTP request; `route` is the declared path of the route it reached, if any. */
export function startHttpSpan(
  tracing: Tracing,
  req: { readonly method?: string | undefined; readonly headers: IncomingHeaders },
  route: string | undefined,
): Span {
  const verb = req.method && knownMethods.has(req.method) ? req.method : "_OTHER";
  const attributes: Attributes = { [ATTR_HTTP_REQUEST_METHOD]: verb };
  if (route) attributes[ATTR_HTTP_ROUTE] = route;
  const name = verb === "_OTHER" ? "HTTP" : verb;
  return tracing.startServer(route ? `${name} ${route}` : name, req.headers, attributes);
}

const knownMethods = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"]);

export function endHttpSpan(span: Span, status: number): void {
  span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
  endSpan(span, status >= 400 ? { code: String(status) } : undefined);
}

/**
 * What the policy step knows of a call: the RPC (for an HTTP route, the one
 * it stands for), its action, its target when the target is an id, and who
 * called. Never a credential: ids and names of kinds only.
 */
export function callAttributes(method: DescMethod, caller: Caller | undefined, target: unknown): Attributes {
  const policy = policyOf(method);
  const attributes: Attributes = { "aegis.procedure": `${method.parent.typeName}/${method.name}` };
  if (policy?.action) attributes["aegis.action"] = policy.action;
  if (policy?.targetField && idField.test(policy.targetField) && typeof target === "string" && idValue.test(target)) {
    attributes["aegis.target"] = target;
  }
  if (caller) {
    attributes["aegis.tenant.id"] = caller.tenantId;
    attributes["aegis.principal.kind"] = caller.kind;
  }
  return attributes;
}

/** Target fields that name an id (`agent_id`, `jti`, `kid`); names, audiences and URLs are left out. */
const idField = /(?:_id|^jti|^kid)$/;
/**
 * What an id looks like (`prn_…`, a key id, a jti); a value that does not,
 * or that has the shape of a credential (`aegis_…`), is not recorded, so a
 * secret pasted into an id field cannot reach a trace.
 */
const idValue = /^(?!aegis_)[\w.:-]{1,120}$/;
