// grpc.health.v1.Health, as standard probes expect: "" is the broker as a
// whole, each Aegis service is known by its full name, anything else is
// NOT_FOUND (Check) or SERVICE_UNKNOWN (Watch). Everything turns NOT_SERVING
// when shutdown begins, and Watch streams end when the broker closes.
import { EventEmitter } from "node:events";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/proto/grpc/health/v1/health_pb.js";

export { Health };

export class HealthMonitor {
  readonly #known: ReadonlySet<string>;
  readonly #changes = new EventEmitter();
  #serving = true;

  constructor(serviceNames: readonly string[]) {
    this.#known = new Set(["", ...serviceNames]);
    this.#changes.setMaxListeners(0);
  }

  status(service: string): Status {
    if (!this.#known.has(service)) return Status.SERVICE_UNKNOWN;
    return this.#serving ? Status.SERVING : Status.NOT_SERVING;
  }

  get serving(): boolean {
    return this.#serving;
  }

  setServing(serving: boolean): void {
    if (this.#serving === serving) return;
    this.#serving = serving;
    this.#changes.emit("change");
  }

  onChange(listener: () => void): () => void {
    this.#changes.on("change", listener);
    return () => this.#changes.off("change", listener);
  }
}

export function healthService(monitor: HealthMonitor, closing: AbortSignal): ServiceImpl<typeof Health> {
  return {
    check(req) {
      const status = monitor.status(req.service);
      if (status === Status.SERVICE_UNKNOWN) throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
      return { status };
    },
    async *watch(req, call) {
      const signal = AbortSignal.any([call.signal, closing]);
      let changed: (() => void) | undefined;
      const unsubscribe = monitor.onChange(() => changed?.());
      const onAbort = () => changed?.();
      signal.addEventListener("abort", onAbort);
      try {
        let last: Status | undefined;
        while (!signal.aborted) {
          const status = monitor.status(req.service);
          if (status !== last) {
            last = status;
            yield { status };
          }
          await new Promise<void>((resolve) => {
            changed = resolve;
          });
        }
      } finally {
        unsubscribe();
        signal.removeEventListener("abort", onAbort);
      }
    },
  };
}
