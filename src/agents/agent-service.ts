// AgentService handlers: decode, call one domain function, encode.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { AgentKey } from "../../gen/prisma/client.js";
import {
  type AgentKeySchema,
  AgentService,
  AgentStatus,
  KeyStatus,
  KeyUse,
} from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { auditBase, callerOf } from "../core/call.js";
import type { BrokerContext } from "../core/context.js";
import { readPage } from "../core/pagination.js";
import { addAgentKey, listAgentKeys, revokeAgentKey } from "./agent-keys.js";
import { type AgentWithGrants, changeAgentStatus, getAgent, listAgents, registerAgent, updateAgent } from "./agents.js";

export { AgentService };

const statuses = {
  active: AgentStatus.ACTIVE,
  suspended: AgentStatus.SUSPENDED,
  revoked: AgentStatus.REVOKED,
} as const satisfies Record<AgentWithGrants["status"], AgentStatus>;

const uses = { signing: KeyUse.SIGNING, encryption: KeyUse.ENCRYPTION } as const satisfies Record<
  AgentKey["use"],
  KeyUse
>;

export function agentService(ctx: BrokerContext): ServiceImpl<typeof AgentService> {
  return {
    async registerAgent(req, call) {
      return { agent: toAgent(await registerAgent(ctx, callerOf(call), auditBase(call), req)) };
    },
    async getAgent(req, call) {
      return { agent: toAgent(await getAgent(ctx, callerOf(call).tenantId, req.agentId)) };
    },
    async listAgents(req, call) {
      const status = (Object.keys(statuses) as (keyof typeof statuses)[]).find((k) => statuses[k] === req.status);
      const { items, nextPageToken } = await listAgents(
        ctx,
        callerOf(call).tenantId,
        { ...(status ? { status } : {}), ...(req.ownerId ? { ownerId: req.ownerId } : {}) },
        readPage(req),
      );
      return { agents: items.map(toAgent), nextPageToken };
    },
    async updateAgent(req, call) {
      const agent = await updateAgent(ctx, callerOf(call), auditBase(call), {
        agentId: req.agentId,
        ...(req.displayName !== undefined ? { displayName: req.displayName } : {}),
        ...(req.description !== undefined ? { description: req.description } : {}),
        ...(req.replaceMetadata ? { metadata: req.metadata } : {}),
      });
      return { agent: toAgent(agent) };
    },
    async suspendAgent(req, call) {
      return { agent: toAgent(await statusChange(ctx, call, req.agentId, "suspend")) };
    },
    async reactivateAgent(req, call) {
      return { agent: toAgent(await statusChange(ctx, call, req.agentId, "reactivate")) };
    },
    async revokeAgent(req, call) {
      return { agent: toAgent(await statusChange(ctx, call, req.agentId, "revoke")) };
    },
    async deleteAgent(req, call) {
      await changeAgentStatus(ctx, callerOf(call), auditBase(call), req.agentId, "delete");
      return {};
    },
    async addAgentKey(req, call) {
      // The request rule admits only these two.
      const use = req.use === KeyUse.ENCRYPTION ? "encryption" : "signing";
      const key = await addAgentKey(ctx, callerOf(call), auditBase(call), { ...req, use });
      return { key: toAgentKey(key) };
    },
    async listAgentKeys(req, call) {
      return { keys: (await listAgentKeys(ctx, callerOf(call), req.agentId)).map(toAgentKey) };
    },
    async revokeAgentKey(req, call) {
      return { key: toAgentKey(await revokeAgentKey(ctx, callerOf(call), auditBase(call), req.keyId)) };
    },
    // Deprecated twins of ApiKeyService's RPCs, served by the same handlers.
  };
}

async function statusChange(
  ctx: BrokerContext,
  call: Parameters<typeof callerOf>[0],
  agentId: string,
  change: "suspend" | "reactivate" | "revoke",
): Promise<AgentWithGrants> {
  return (await changeAgentStatus(ctx, callerOf(call), auditBase(call), agentId, change)) as AgentWithGrants;
}

function toAgent(agent: AgentWithGrants) {
  return {
    id: agent.id,
    tenantId: agent.tenantId,
    displayName: agent.displayName,
    description: agent.description,
    ownerId: agent.ownerId ?? "",
    metadata: agent.metadata as Record<string, string>,
    status: statuses[agent.status],
    createTime: timestampFromDate(agent.createdAt),
    updateTime: timestampFromDate(agent.updatedAt),
    scopes: agent.grants.map((g) => g.scope).sort(),
  };
}

function toAgentKey(key: AgentKey): MessageInitShape<typeof AgentKeySchema> {
  return {
    id: key.id,
    agentId: key.principalId,
    use: uses[key.use],
    alg: key.alg,
    jwkJson: JSON.stringify(key.jwk),
    thumbprint: key.thumbprint,
    status: key.revokedAt ? KeyStatus.REVOKED : KeyStatus.ACTIVE,
    createTime: timestampFromDate(key.createdAt),
  };
}
