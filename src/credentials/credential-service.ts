// CredentialService handlers: decode, call one domain function, encode.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { Credential } from "../../gen/prisma/client.js";
import { type CredentialSchema, CredentialService } from "../../gen/proto/aegis/credential/v1/credential_pb.js";
import { auditBase, callerOf } from "../core/call.js";
import type { BrokerContext } from "../core/context.js";
import { readPage } from "../core/pagination.js";
import { targetOf } from "../policy/targets.js";
import {
  deleteCredential,
  getCredential,
  listCredentials,
  registerCredential,
  updateCredential,
} from "./credentials.js";

export { CredentialService };

export function credentialService(ctx: BrokerContext): ServiceImpl<typeof CredentialService> {
  return {
    async registerCredential(req, call) {
      return { credential: toCredential(await registerCredential(ctx, callerOf(call), auditBase(call), req)) };
    },
    async getCredential(req, call) {
      return { credential: toCredential(await getCredential(ctx, callerOf(call), req.credentialId)) };
    },
    async listCredentials(req, call) {
      const { items, nextPageToken } = await listCredentials(ctx, callerOf(call), req, readPage(req));
      return { credentials: items.map(toCredential), nextPageToken };
    },
    async updateCredential(req, call) {
      return { credential: toCredential(await updateCredential(ctx, callerOf(call), auditBase(call), req)) };
    },
    async deleteCredential(req, call) {
      await deleteCredential(ctx, callerOf(call), auditBase(call), req.credentialId);
      return {};
    },
  };
}

function toCredential(credential: Credential): MessageInitShape<typeof CredentialSchema> {
  return {
    id: credential.id,
    target: targetOf(credential),
    displayName: credential.displayName,
    ownerId: credential.ownerId,
    version: credential.version,
    recipientKeyIds: credential.recipientKids.split(" "),
    createTime: timestampFromDate(credential.createdAt),
    updateTime: timestampFromDate(credential.updatedAt),
  };
}
