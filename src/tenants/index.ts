// Tenants: the isolation boundary of everything else.
import type { BrokerContext } from "../core/context.js";
import { type BrokerModule, served } from "../core/module.js";
import { TenantService, tenantService } from "./tenant-service.js";

/** `adminScopes`: the grants of each new tenant's first admin (policy/admin-scopes.ts `tenantAdminScopes`). */
export function tenantsModule(ctx: BrokerContext, adminScopes: readonly string[]): BrokerModule {
  return { name: "tenants", services: [served(TenantService, tenantService(ctx, adminScopes))] };
}
