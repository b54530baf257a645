// Roles: named sets of scopes (the built-in tenant roles and a tenant's
// custom ones), given to principals under the grants domain's
// no-escalation rule.
import type { DescService } from "@bufbuild/protobuf";
import type { BrokerContext } from "../core/context.js";
import { type BrokerModule, served } from "../core/module.js";
import { builtInRoles } from "./built-in-roles.js";
import { RoleService, roleService } from "./role-service.js";

export { type BuiltInRole, type BuiltInRoleName, builtInRoles } from "./built-in-roles.js";

/** `services`: every service the broker serves, from which the built-in roles are derived. */
export function rolesModule(ctx: BrokerContext, services: readonly DescService[]): BrokerModule {
  return { name: "roles", services: [served(RoleService, roleService(ctx, builtInRoles(services)))] };
}
