// Leases: time-boxed, use-counted rights to redeem one credential.
import type { BrokerContext } from "../core/context.js";
import { type BrokerModule, served } from "../core/module.js";
import { LeaseService, leaseService } from "./lease-service.js";

export { endActiveLeases } from "./lease-locks.js";

export function leasesModule(ctx: BrokerContext): BrokerModule {
  return { name: "leases", services: [served(LeaseService, leaseService(ctx))] };
}
