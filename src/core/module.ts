// What a domain hands the composition root: one value per domain, as a Vault
// backend hands the core its paths, periodic function and invalidation
// (framework.Backend). The root iterates the modules; nothing is wired by
// hand, and a new capability is a new module, not a new wire.
import type { DescMethod, DescService, Message } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import type { CallOrigin, CallSite } from "./call.js";
import type { Caller } from "./caller.js";
import type { NodeServerRequest, NodeServerResponse } from "./http.js";
import type { RevocationEntry } from "./revocation-feed.js";

/** An RPC service and its implementation. */
export interface ServedService {
  readonly service: DescService;
  // biome-ignore lint/suspicious/noExplicitAny: a list of services of different types; `served` checks each pair.
  readonly implementation: Partial<ServiceImpl<any>>;
}

/** Pairs a service with its implementation, type-checked against each other. */
export function served<S extends DescService>(service: S, implementation: ServiceImpl<S>): ServedService {
  return { service, implementation };
}

/** An HTTP endpoint beside the RPCs: a plain one, or the HTTP face of an RPC. */
export type HttpRoute = PlainRoute | SharedPolicyRoute;

/** An HTTP endpoint with no RPC twin (well-known metadata, pages, health). */
export interface PlainRoute {
  readonly method: "GET" | "POST";
  /** The path, exactly; or ending in `/*`, every path below it that no exact route takes. */
  readonly path: string;
  readonly shares?: undefined;
  handle(req: NodeServerRequest, res: NodeServerResponse, call: CallOrigin): Promise<void>;
}

/**
 * An HTTP endpoint that is the face of an RPC (`/oauth/introspect` and
 * IntrospectToken): it shares that RPC's declared policy, and the router
 * enforces it with the same pipeline step as the RPC's (authentication as
 * the policy demands, through the failed-authentication limit; the policy
 * check; the RPC's request rules; every refusal audited with the RPC's
 * action and target). The route only translates its wire format: `read`
 * turns the request into the RPC's request, `serve` answers one the policy
 * let through, `refuse` writes any failure. So the endpoint cannot drift
 * from its twin.
 */
// biome-ignore lint/suspicious/noExplicitAny: a list of routes decoding to different types; each route's own type checks read against serve.
export interface SharedPolicyRoute<Decoded = any> {
  readonly method: "GET" | "POST";
  /** The path, exactly. */
  readonly path: string;
  /** The RPC whose policy the route shares (`read` may name another per request: one per grant type). */
  readonly shares: DescMethod;
  /** Reads the request (bounded) into the RPC request it stands for. */
  read(req: NodeServerRequest): Promise<SharedRequest<Decoded>>;
  /** Answers a request the pipeline let through; `call.caller` is set unless the RPC is anonymous. */
  serve(res: NodeServerResponse, call: HttpCall, decoded: Decoded): Promise<void>;
  /** Writes a refusal or failure in the route's wire format (e.g. RFC 6749 §5.2 JSON, or a page). */
  refuse(req: NodeServerRequest, res: NodeServerResponse, error: unknown): void | Promise<void>;
}

/** One request of a SharedPolicyRoute, as the RPC it stands for would receive it. */
export interface SharedRequest<Decoded> {
  /** The RPC this request stands for when not the route's `shares`. */
  readonly rpc?: DescMethod;
  /** The RPC's request message: checked against its rules, its target field audited. */
  readonly message: Message;
  /**
   * The credentials of an OAuth client as RFC 6749 §2.3 carries them
   * (Basic, or the form's client_id / client_secret / client_assertion).
   * Without them the caller is authenticated from `Authorization` as on
   * the RPC.
   */
  readonly client?: PresentedClient;
  /**
   * A public client (RFC 6749 §2.1) named by `client_id` alone, which the
   * domain function checks against what it acts on (RFC 7009 §2.1: a
   * public client revokes its own tokens). Nobody is authenticated; a
   * refusal still counts against the client's address and is audited with
   * the RPC's action.
   */
  readonly publicClient?: boolean;
  /**
   * The caller, for a route whose credential is its own (the verification
   * page's session cookie): the pipeline calls it instead of reading
   * `Authorization`, under the same failed-authentication limit, policy
   * check and refusal audit.
   */
  readonly authenticate?: () => Promise<Caller>;
  /** What `serve` needs besides the message. */
  readonly decoded: Decoded;
}

export interface PresentedClient {
  /** The `client_id` the client named; it must be the authenticated principal. */
  readonly id?: string;
  /** The client secret: an API key or user API token. */
  readonly secret?: string;
  /** An RFC 7523 client assertion. */
  readonly assertion?: string;
}

/** An HTTP request the pipeline let through: where it came from, where it went, who called. */
export interface HttpCall extends CallSite {
  readonly caller: Caller | undefined;
}

/** Work a module does on every instance at a fixed period (pruning, reloading). */
export interface PeriodicJob {
  readonly name: string;
  readonly everyMs: number;
  run(now: Date): Promise<unknown>;
}

export interface BrokerModule {
  readonly name: string;
  readonly services?: readonly ServedService[];
  readonly routes?: readonly HttpRoute[];
  readonly jobs?: readonly PeriodicJob[];
  /** What this module drops or reloads when the revocation feed names something. */
  onRevocation?(entry: RevocationEntry): void;
  /** Called once at shutdown, after the listener stopped taking calls, in reverse module order. */
  close?(): Promise<void>;
}
