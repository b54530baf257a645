// Grants: giving and taking away scopes. Peers that give scopes on their own
// terms (roles) reuse the rule and the writes from here, never a copy.
import type { BrokerContext } from "../core/context.js";
import { type BrokerModule, served } from "../core/module.js";
import { GrantService, grantService } from "./grant-service.js";

export {
  afterGrantsGiven,
  assertGrantable,
  assertGrantee,
  assertMayGive,
  assertMayHandOut,
  assertMayTakeAway,
  type GivenScope,
  type GrantView,
  givableScope,
  giveGrant,
  grantsChanged,
  takeAwayGrants,
} from "./grants.js";

export function grantsModule(ctx: BrokerContext): BrokerModule {
  return { name: "grants", services: [served(GrantService, grantService(ctx))] };
}
