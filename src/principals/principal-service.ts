// PrincipalService handlers.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { Principal } from "../../gen/prisma/client.js";
import { PrincipalKind, PrincipalService, PrincipalStatus } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { callerOf } from "../core/call.js";
import type { BrokerContext } from "../core/context.js";
import { readPage } from "../core/pagination.js";
import { getPrincipal, listPrincipals } from "./principals.js";

export { PrincipalService };

/** Stored principal kinds as the wire's enum. */
export const principalKinds = {
  person: PrincipalKind.PERSON,
  agent: PrincipalKind.AGENT,
  service: PrincipalKind.SERVICE,
} as const satisfies Record<Principal["kind"], PrincipalKind>;

const statuses = {
  active: PrincipalStatus.ACTIVE,
  suspended: PrincipalStatus.SUSPENDED,
  revoked: PrincipalStatus.REVOKED,
} as const satisfies Record<Principal["status"], PrincipalStatus>;

export function principalService(ctx: BrokerContext): ServiceImpl<typeof PrincipalService> {
  return {
    async whoAmI(_req, call) {
      const caller = callerOf(call);
      const principal = await getPrincipal(ctx.prisma, caller.tenantId, caller.principalId);
      return { principal: toMessage(principal), scopes: [...caller.scopes].sort() };
    },
    async getPrincipal(req, call) {
      return { principal: toMessage(await getPrincipal(ctx.prisma, callerOf(call).tenantId, req.principalId)) };
    },
    async listPrincipals(req, call) {
      const filter = {
        kind: keyOf(principalKinds, req.kind),
        status: keyOf(statuses, req.status),
      };
      const { items, nextPageToken } = await listPrincipals(ctx, callerOf(call).tenantId, filter, readPage(req));
      return { principals: items.map(toMessage), nextPageToken };
    },
  };
}

function keyOf<K extends string, V>(table: Record<K, V>, value: V): K | undefined {
  return (Object.keys(table) as K[]).find((key) => table[key] === value);
}

function toMessage(principal: Principal) {
  return {
    id: principal.id,
    tenantId: principal.tenantId,
    kind: principalKinds[principal.kind],
    status: statuses[principal.status],
    displayName: principal.displayName,
    createTime: timestampFromDate(principal.createdAt),
    updateTime: timestampFromDate(principal.updatedAt),
  };
}
