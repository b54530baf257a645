// TenantService handlers: decode, call one domain function, encode.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { Tenant } from "../../gen/prisma/client.js";
import { TenantService } from "../../gen/proto/aegis/tenant/v1/tenant_pb.js";
import { auditBase } from "../core/call.js";
import type { BrokerContext } from "../core/context.js";
import { readPage } from "../core/pagination.js";
import { toEnrollment, toPerson } from "../people/index.js";
import { createTenant, getTenant, listTenants } from "./tenants.js";

export { TenantService };

/** `adminScopes`: what a new tenant's first admin holds (policy/admin-scopes.ts). */
export function tenantService(ctx: BrokerContext, adminScopes: readonly string[]): ServiceImpl<typeof TenantService> {
  return {
    async createTenant(req, call) {
      const created = await createTenant(ctx, auditBase(call), req, adminScopes);
      return {
        tenant: toMessage(created.tenant),
        admin: toPerson(created.admin),
        adminEnrollment: toEnrollment(created.enrollment),
        loginClientId: created.loginClientId,
      };
    },
    async getTenant(req) {
      return { tenant: toMessage(await getTenant(ctx, req.tenantId)) };
    },
    async listTenants(req) {
      const { items, nextPageToken } = await listTenants(ctx, readPage(req));
      return { tenants: items.map(toMessage), nextPageToken };
    },
  };
}

function toMessage(tenant: Tenant) {
  return {
    id: tenant.id,
    name: tenant.name,
    displayName: tenant.displayName,
    createTime: timestampFromDate(tenant.createdAt),
  };
}
