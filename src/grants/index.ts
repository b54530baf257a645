// Grants: giving and taking away scopes.
import type { BrokerContext } from "../core/context.js";
import { type BrokerModule, served } from "../core/module.js";
import { GrantService, grantService } from "./grant-service.js";

export function grantsModule(ctx: BrokerContext): BrokerModule {
  return { name: "grants", services: [served(GrantService, grantService(ctx))] };
}
