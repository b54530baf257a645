// The interceptor chain every call passes through, outermost first:
//
// 1. observe   – request id (response header, error metadata), one structured
//                log line per call, every error translated once for the wire;
// 2. deadline  – unary calls without a client deadline get the default one;
// 3. guard     – authentication, then the RPC's declared policy; a refusal is
//                written to the audit trail before the client hears of it;
// 4. validate  – the request's rules declared in proto (./request-validation.ts).
//
// Handlers run only when all four let the call through. An HTTP route that
// is the face of an RPC (SharedPolicyRoute: the OAuth endpoints) passes the
// same policy step and request rules (`servedUnderSharedPolicy`, run by the
// HTTP router, which gives it the request id and log line), so no endpoint
// re-does authentication or drifts from its twin's policy.
import type { DescMethod } from "@bufbuild/protobuf";
import type { Validator } from "@bufbuild/protovalidate";
import {
  Code,
  ConnectError,
  type Interceptor,
  type StreamRequest,
  type StreamResponse,
  type UnaryRequest,
} from "@connectrpc/connect";
import type { Logger } from "pino";
import { type Authenticator, readCredentials } from "../auth/authenticate.js";
import {
  authenticateClient,
  type ClientAuthenticationDeps,
  type ClientCredentials,
} from "../auth/client-authentication.js";
import type { FailedAuthentications } from "../auth/failed-authentications.js";
import type { AuditTrail } from "../core/audit.js";
import { type CallInfo, type CallSite, callKey, publicUrlOf } from "../core/call.js";
import type { Caller } from "../core/caller.js";
import { reasonOf, toConnectError } from "../core/errors/connect-error.js";
import { fromDatabaseError } from "../core/errors/database-error.js";
import { DomainError, unauthenticated } from "../core/errors/domain-error.js";
import { fromViolations } from "../core/errors/validation-error.js";
import { presentedScheme, resourceChallenges } from "../core/errors/www-authenticate.js";
import type { BrokerMetrics } from "../core/metrics.js";
import type { HttpCall, SharedPolicyRoute, SharedRequest } from "../core/module.js";
import type { Tracing } from "../core/tracing.js";
import { authorize } from "../policy/authorize.js";
import { Authorization, type MethodPolicy, policyOf } from "../policy/method-policy.js";
import { dpopAlgorithms } from "../protocol/dpop.js";
import { callAttributes } from "./tracing.js";

export const requestIdHeader = "aegis-request-id";

export function observe(deps: {
  log: Logger;
  metrics?: Pick<BrokerMetrics, "rpcStarted">;
  /** Puts the call's trace and span ids on its log line. */
  tracing?: Pick<Tracing, "logIds">;
}): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    const call = req.contextValues.get(callKey);
    const requestId = call?.requestId ?? "unknown";
    const procedure = `${req.service.typeName}/${req.method.name}`;
    // The client's own X-Request-Id, when it was taken as the request id, goes back under its own name too.
    const echoed = req.header.get("x-request-id") === requestId;
    let measured = deps.metrics?.rpcStarted(req.service.typeName, req.method.name);
    const measure = (code: string) => {
      measured?.(code);
      measured = undefined;
    };
    const finish = (error: unknown) => {
      const connectError = error === undefined ? undefined : toConnectError(error);
      connectError?.metadata.set(requestIdHeader, requestId);
      if (echoed) connectError?.metadata.set("x-request-id", requestId);
      if (connectError?.code === Code.Unauthenticated && connectError.cause instanceof DomainError) {
        const presented = presentedScheme(req.header.get("authorization"));
        for (const value of resourceChallenges(connectError.cause, { presented, dpopAlgorithms })) {
          connectError.metadata.append("www-authenticate", value);
        }
      }
      const fields = {
        requestId,
        procedure,
        protocol: req.header.get("content-type")?.split(";")[0],
        principal: call?.caller?.principalId,
        code: connectError ? Code[connectError.code] : "OK",
        reason: connectError ? reasonOf(connectError) : undefined,
        ms: Math.round((performance.now() - started) * 10) / 10,
      };
      if (deps.tracing) Object.assign(fields, deps.tracing.logIds());
      measure(fields.code);
      if (connectError?.code === Code.Internal) {
        deps.log.error({ ...fields, err: connectError.cause ?? connectError }, "rpc failed");
      } else if (error instanceof DomainError && error.detail !== error.reason) {
        deps.log.info({ ...fields, detail: error.detail }, "rpc");
      } else {
        deps.log.info(fields, "rpc");
      }
      return connectError;
    };

    try {
      const res = await next(req);
      res.header.set(requestIdHeader, requestId);
      if (echoed) res.header.set("x-request-id", requestId);
      if (!res.stream) {
        finish(undefined);
        return res;
      }
      // A stream its client left is neither finished nor failed: it still leaves the in-flight gauge.
      const left = () => measure(Code[Code.Canceled]);
      return { ...res, message: translateStream(res.message, finish, left) } as StreamResponse;
    } catch (error) {
      throw finish(error);
    }
  };
}

async function* translateStream<T>(
  messages: AsyncIterable<T>,
  finish: (error: unknown) => ConnectError | undefined,
  left: () => void,
): AsyncIterable<T> {
  try {
    yield* messages;
    finish(undefined);
  } catch (error) {
    throw finish(error);
  } finally {
    left();
  }
}

/**
 * The default deadline of unary calls that carry none. Calls in flight are
 * kept in one set and a single sweep, every `sweepMs`, refuses those past
 * their deadline: a timer and a Promise.race per call cost ~10 µs of a
 * no-op call's ~100 (measured side by side). The price is precision: a
 * call is refused up to one sweep after its deadline.
 */
export class Deadlines {
  readonly #pending = new Set<{ readonly due: number; readonly reject: (error: unknown) => void }>();

  constructor(
    private readonly defaultMs: number,
    /** Milliseconds on a monotonic clock (tests give their own). */
    private readonly now: () => number = () => performance.now(),
  ) {}

  readonly interceptor: Interceptor = (next) => (req) => {
    if (req.stream || req.header.has("connect-timeout-ms") || req.header.has("grpc-timeout")) return next(req);
    return new Promise((resolve, reject) => {
      const entry = { due: this.now() + this.defaultMs, reject };
      this.#pending.add(entry);
      next(req).then(
        (res) => {
          this.#pending.delete(entry);
          resolve(res);
        },
        (error: unknown) => {
          this.#pending.delete(entry);
          reject(error);
        },
      );
    });
  };

  /** Refuses every call past its deadline. Calls join in deadline order (one default), so the sweep stops at the first one still due. */
  sweep(): void {
    const now = this.now();
    for (const entry of this.#pending) {
      if (entry.due > now) break;
      this.#pending.delete(entry);
      entry.reject(new ConnectError(`deadline of ${this.defaultMs} ms exceeded`, Code.DeadlineExceeded));
    }
  }

  /** Calls in flight under the default deadline (for tests). */
  get inFlight(): number {
    return this.#pending.size;
  }
}

/** What the policy step needs: who authenticates whom, the shared limit, the audit trail. */
export interface PolicyDeps {
  readonly authenticator: Authenticator;
  readonly audit: AuditTrail;
  readonly publicUrl: string;
  /** Failed authentications per client address, shared with every other way in. */
  readonly authFailures: FailedAuthentications;
  /** How callers of client-authenticated RPCs (MintToken) are authenticated. */
  readonly clients: ClientAuthenticationDeps;
  /** Told who called and what on, for the call's server span; absent when tracing is off. */
  readonly tracing?: Tracing;
}

/**
 * The policy step for one call of an RPC, whichever wire it came over:
 * authenticates the caller as the policy demands (`authenticate` reads the
 * credential the wire carries), through the failed-authentication limit,
 * then checks the policy. Sets `call.caller`; a refusal is audited with the
 * RPC's action and target before it is thrown.
 */
async function admit(
  deps: PolicyDeps,
  method: DescMethod,
  call: CallInfo,
  authenticate: (policy: MethodPolicy | undefined) => Promise<Caller | undefined>,
  target: () => unknown,
): Promise<void> {
  const policy = policyOf(method);
  let refusal: DomainError | undefined;
  if (policy?.authorization !== Authorization.ANONYMOUS) {
    try {
      // Guessing keys from one address stops here, before any lookup.
      call.caller = await deps.authFailures.check(call.clientAddress, () => authenticate(policy));
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      refusal = error;
    }
  }
  refusal ??= authorize(policy, call.caller);
  deps.tracing?.describeCall(callAttributes(method, call.caller, target()));
  if (refusal) {
    await auditRefusal(deps.audit, method, call, target, refusal);
    throw refusal;
  }
}

/**
 * A failure after admission (the request rules, the handler): refusals
 * decided there (escalation, acting on oneself, not the owner) are audited
 * too, so every denied attempt is audited once. Returns the error to throw.
 */
async function afterAdmission(
  deps: PolicyDeps,
  method: DescMethod,
  call: CallInfo,
  target: () => unknown,
  thrown: unknown,
): Promise<unknown> {
  const error = fromDatabaseError(thrown) ?? thrown;
  if (error instanceof DomainError && (deniedCodes.has(error.code) || policyOf(method)?.auditEveryRefusal)) {
    await auditRefusal(deps.audit, method, call, target, error);
  }
  return error;
}

function auditRefusal(
  audit: AuditTrail,
  method: DescMethod,
  call: CallInfo,
  target: () => unknown,
  error: DomainError,
): Promise<unknown> {
  const named = target();
  return audit.denied(
    {
      requestId: call.requestId,
      tenantId: call.caller?.tenantId ?? null,
      actorId: call.caller?.principalId ?? null,
      client: call.client,
    },
    policyOf(method)?.action || `${method.parent.typeName}/${method.name}`,
    typeof named === "string" ? named.slice(0, 200) : "",
    error,
  );
}

/** The value of the policy's target field in a request message ("" without one). */
function targetOf(method: DescMethod, message: unknown): unknown {
  const field = policyOf(method)?.targetField;
  return field && message ? (message as Record<string, unknown>)[camel(field)] : "";
}

/** The policy step of every RPC (authentication, policy, refusal audit), as an interceptor. */
export function guard(deps: PolicyDeps): Interceptor {
  return (next) => async (req) => {
    const call = req.contextValues.get(callKey);
    if (!call) throw new Error("call context missing");
    const target = () => (req.stream ? "" : targetOf(req.method, req.message));
    await admit(
      deps,
      req.method,
      call,
      (policy) => {
        const url = publicUrlOf(deps.publicUrl, req.url);
        return policy?.clientAuthentication
          ? authenticateClient(deps.clients, clientCredentialsOf(req, url))
          : deps.authenticator.authenticate(readCredentials(req.header, { method: req.requestMethod, url }));
      },
      target,
    );
    try {
      return await next(req);
    } catch (thrown) {
      throw await afterAdmission(deps, req.method, call, target, thrown);
    }
  };
}

/**
 * The same step for an HTTP route that shares an RPC's policy
 * (SharedPolicyRoute), between reading its request and serving it: the
 * RPC's policy, authentication and refusal audit as above, then the RPC's
 * request rules, then `serve`. Throws what the route is to refuse with.
 */
export async function servedUnderSharedPolicy<Decoded>(
  deps: PolicyDeps & { readonly validator: Validator },
  route: SharedPolicyRoute<Decoded>,
  request: SharedRequest<Decoded>,
  site: CallSite,
  serve: (call: HttpCall) => Promise<void>,
): Promise<void> {
  const method = request.rpc ?? route.shares;
  const call: CallInfo = {
    requestId: site.requestId,
    client: site.client,
    clientAddress: site.clientAddress,
    caller: undefined,
  };
  const target = () => targetOf(method, request.message);
  if (!request.publicClient) {
    await admit(deps, method, call, (policy) => authenticateOverHttp(deps, policy, request, site), target);
  } else {
    deps.tracing?.describeCall(callAttributes(method, undefined, target()));
  }
  try {
    const checked = deps.validator.validate(method.input, request.message);
    if (checked.kind === "invalid") throw fromViolations(checked.violations);
    if (checked.kind === "error") throw checked.error;
    const served = () => serve({ ...site, caller: call.caller });
    // A public client is named, not authenticated: what the domain refuses
    // as unauthenticated counts against the address like a bad credential
    // (and an address over the limit is refused before anything is served).
    await (request.publicClient ? deps.authFailures.check(call.clientAddress, served) : served());
  } catch (thrown) {
    throw await afterAdmission(deps, method, call, target, thrown);
  }
}

/**
 * The caller of an HTTP request, as its twin's policy demands: whoever the
 * route's own credential names (a page's session); an OAuth client by its
 * secret or assertion (RFC 6749 §2.3, RFC 7523) for a client-authenticated
 * RPC; otherwise the client secret of client_secret_basic taken as an API
 * key, or the `Authorization` credential as on an RPC. A named client_id
 * must be the caller.
 */
async function authenticateOverHttp(
  deps: PolicyDeps,
  policy: MethodPolicy | undefined,
  request: SharedRequest<unknown>,
  site: CallSite,
): Promise<Caller | undefined> {
  if (request.authenticate) return request.authenticate();
  const { client } = request;
  let caller: Caller | undefined;
  if (policy?.clientAuthentication) {
    const dpop = site.headers.get("dpop");
    caller = await authenticateClient(deps.clients, {
      ...(client?.secret ? { secret: client.secret } : {}),
      ...(client?.assertion ? { assertion: client.assertion } : {}),
      ...(dpop ? { dpop } : {}),
      method: site.method,
      url: site.url,
    });
  } else if (client?.secret !== undefined) {
    caller = await deps.authenticator.authenticate({
      bearer: client.secret,
      scheme: "bearer",
      headers: site.headers,
      method: site.method,
      url: site.url,
    });
  } else {
    caller = await deps.authenticator.authenticate(readCredentials(site.headers, site));
  }
  if (caller && client?.id && client.id !== caller.principalId) {
    throw unauthenticated(`client_id ${client.id.slice(0, 40)} does not match the credential`);
  }
  return caller;
}

/**
 * An OAuth client's credentials on an RPC: the Bearer secret, the request's
 * `client_assertion`, the DPoP proof. Any other scheme is refused here.
 */
function clientCredentialsOf(req: UnaryRequest | StreamRequest, url: string): ClientCredentials {
  const credentials = readCredentials(req.header, { method: req.requestMethod, url });
  if (credentials.scheme === "dpop") throw unauthenticated("a client presents its secret as a Bearer credential");
  const assertion = req.stream ? undefined : (req.message as { clientAssertion?: unknown }).clientAssertion;
  const dpop = req.header.get("dpop");
  return {
    ...(credentials.bearer ? { secret: credentials.bearer } : {}),
    ...(typeof assertion === "string" && assertion !== "" ? { assertion } : {}),
    ...(dpop ? { dpop } : {}),
    method: req.requestMethod,
    url,
  };
}

const deniedCodes = new Set<DomainError["code"]>(["permission_denied", "unauthenticated", "resource_exhausted"]);

function camel(field: string): string {
  return field.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}
