// GrantService handlers: decode, call one domain function, encode.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { type GrantSchema, GrantService } from "../../gen/proto/aegis/grant/v1/grant_pb.js";
import { auditBase, callerOf } from "../core/call.js";
import type { BrokerContext } from "../core/context.js";
import { createGrant, deleteGrant, type GrantView, listGrants } from "./grants.js";

export { GrantService };

export function grantService(ctx: BrokerContext): ServiceImpl<typeof GrantService> {
  return {
    async createGrant(req, call) {
      return { grant: toGrant(await createGrant(ctx, callerOf(call), auditBase(call), req)) };
    },
    async deleteGrant(req, call) {
      await deleteGrant(ctx, callerOf(call), auditBase(call), req.grantId);
      return {};
    },
    async listGrants(req, call) {
      return { grants: (await listGrants(ctx, callerOf(call), req.principalId)).map(toGrant) };
    },
  };
}

function toGrant(grant: GrantView): MessageInitShape<typeof GrantSchema> {
  return {
    id: grant.id,
    principalId: grant.principalId,
    scope: grant.scope,
    grantedBy: grant.grantedBy ?? "",
    createTime: timestampFromDate(grant.createdAt),
    resourceServerId: grant.resourceServerId,
  };
}
