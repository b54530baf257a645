// Tenants: the isolation boundary of everything else.
import type { BrokerContext } from "../core/context.js";
import { type BrokerModule, served } from "../core/module.js";
import { TenantService, tenantService } from "./tenant-service.js";

export function tenantsModule(ctx: BrokerContext): BrokerModule {
  return { name: "tenants", services: [served(TenantService, tenantService(ctx))] };
}
