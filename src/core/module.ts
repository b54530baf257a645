// What a domain hands the composition root: one value per domain, as a Vault
// backend hands the core its paths, periodic function and invalidation
// (framework.Backend). The root iterates the modules; nothing is wired by
// hand, and a new capability is a new module, not a new wire.
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import type { CallOrigin } from "./call.js";
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

/** One HTTP endpoint beside the RPCs (OAuth, well-known metadata, pages, health). */
export interface HttpRoute {
  readonly method: "GET" | "POST";
  /** The path, exactly; or ending in `/*`, every path below it that no exact route takes. */
  readonly path: string;
  /**
   * The RPC this route is the HTTP face of: it shares that RPC's declared
   * policy (action for the audit trail, visibility), e.g. `/oauth/introspect`
   * and IntrospectToken. Undefined for routes with no RPC twin (pages, health).
   */
  readonly shares?: DescMethod;
  handle(req: NodeServerRequest, res: NodeServerResponse, call: CallOrigin): Promise<void>;
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
