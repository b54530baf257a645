// Principals: who may act (people, agents, services), as other domains look them up.
import type { BrokerContext } from "../core/context.js";
import { type BrokerModule, served } from "../core/module.js";
import { PrincipalService, principalService } from "./principal-service.js";

export { changePrincipalStatus, type LifecycleTarget, type StatusChange } from "./lifecycle.js";
export { principalKinds } from "./principal-service.js";
export { getPrincipal, lockPrincipal } from "./principals.js";

export function principalsModule(ctx: BrokerContext): BrokerModule {
  return { name: "principals", services: [served(PrincipalService, principalService(ctx))] };
}
