// ApiKeyService handlers: decode, call one domain function, encode. The
// deprecated API-key RPCs of AgentService take the same requests and are
// served by these same handlers (agents/agent-service.ts).
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { ApiKey } from "../../gen/prisma/client.js";
import { ApiKeyService } from "../../gen/proto/aegis/apikey/v1/apikey_pb.js";
import { auditBase, callerOf } from "../core/call.js";
import type { BrokerContext } from "../core/context.js";
import { readPage } from "../core/pagination.js";
import { createApiKey, listApiKeys, revokeApiKey, rotateApiKey } from "./api-key-admin.js";

export { ApiKeyService };

/**
 * The four API-key RPCs over the fields their requests share, so that both
 * ApiKeyService and AgentService's deprecated twins are served by them.
 */
export function apiKeyHandlers(ctx: BrokerContext) {
  return {
    async createApiKey(req: { principalId: string; label: string; ttlSeconds: bigint }, call: HandlerContext) {
      const { key, secret } = await createApiKey(ctx, callerOf(call), auditBase(call), {
        principalId: req.principalId,
        label: req.label,
        ttlSeconds: Number(req.ttlSeconds),
      });
      return { key: toApiKey(key), secret };
    },
    async listApiKeys(req: { principalId: string; pageSize?: number; pageToken?: string }, call: HandlerContext) {
      // AgentService's deprecated twin has no page fields: it answers every key, as it always did.
      const page =
        req.pageSize === undefined ? undefined : readPage({ pageSize: req.pageSize, pageToken: req.pageToken ?? "" });
      const listed = await listApiKeys(ctx, callerOf(call), req.principalId, page);
      return { keys: listed.items.map(toApiKey), nextPageToken: listed.nextPageToken };
    },
    async rotateApiKey(req: { keyId: string; graceSeconds: bigint }, call: HandlerContext) {
      const rotated = await rotateApiKey(ctx, callerOf(call), auditBase(call), {
        keyId: req.keyId,
        graceSeconds: Number(req.graceSeconds),
      });
      return { key: toApiKey(rotated.key), secret: rotated.secret, previous: toApiKey(rotated.previous) };
    },
    async revokeApiKey(req: { keyId: string }, call: HandlerContext) {
      return { key: toApiKey(await revokeApiKey(ctx, callerOf(call), auditBase(call), req.keyId)) };
    },
  };
}

export function apiKeyService(ctx: BrokerContext): ServiceImpl<typeof ApiKeyService> {
  return apiKeyHandlers(ctx);
}

function toApiKey(key: ApiKey) {
  return {
    keyId: key.id,
    principalId: key.principalId,
    label: key.label,
    prefix: `aegis_${key.kind === "user_token" ? "ut" : "ak"}_${key.id}_`,
    createTime: timestampFromDate(key.createdAt),
    ...(key.expiresAt ? { expireTime: timestampFromDate(key.expiresAt) } : {}),
    ...(key.lastUsedAt ? { lastUseTime: timestampFromDate(key.lastUsedAt) } : {}),
    ...(key.revokedAt ? { revokeTime: timestampFromDate(key.revokedAt) } : {}),
  };
}
