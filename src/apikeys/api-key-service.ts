// ApiKeyService handlers: decode, call one domain function, encode.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { ApiKey } from "../../gen/prisma/client.js";
import { type ApiKeySchema, ApiKeyService } from "../../gen/proto/aegis/apikey/v1/apikey_pb.js";
import { auditBase, callerOf } from "../core/call.js";
import type { BrokerContext } from "../core/context.js";
import { optionalSeconds } from "../core/duration.js";
import { readPage } from "../core/pagination.js";
import { createApiKey, listApiKeys, revokeApiKey, rotateApiKey } from "./api-key-admin.js";

export { ApiKeyService };

export function apiKeyService(ctx: BrokerContext): ServiceImpl<typeof ApiKeyService> {
  return {
    async createApiKey(req, call) {
      const { key, secret } = await createApiKey(ctx, callerOf(call), auditBase(call), {
        principalId: req.principalId,
        label: req.label,
        ttlSeconds: optionalSeconds(req.ttl),
      });
      return { key: toApiKey(key), secret };
    },
    async listApiKeys(req, call) {
      const listed = await listApiKeys(ctx, callerOf(call), req.principalId, readPage(req));
      return { keys: listed.items.map(toApiKey), nextPageToken: listed.nextPageToken };
    },
    async rotateApiKey(req, call) {
      const rotated = await rotateApiKey(ctx, callerOf(call), auditBase(call), {
        keyId: req.keyId,
        graceSeconds: optionalSeconds(req.gracePeriod),
      });
      return { key: toApiKey(rotated.key), secret: rotated.secret, previous: toApiKey(rotated.previous) };
    },
    async revokeApiKey(req, call) {
      return { key: toApiKey(await revokeApiKey(ctx, callerOf(call), auditBase(call), req.keyId)) };
    },
  };
}

function toApiKey(key: ApiKey): MessageInitShape<typeof ApiKeySchema> {
  return {
    id: key.id,
    principalId: key.principalId,
    label: key.label,
    prefix: `aegis_${key.kind === "user_token" ? "ut" : "ak"}_${key.id}_`,
    createTime: timestampFromDate(key.createdAt),
    ...(key.expiresAt ? { expireTime: timestampFromDate(key.expiresAt) } : {}),
    ...(key.lastUsedAt ? { lastUseTime: timestampFromDate(key.lastUsedAt) } : {}),
    ...(key.revokedAt ? { revokeTime: timestampFromDate(key.revokedAt) } : {}),
  };
}
