// Agents: principals of kind agent, owned by a person of their tenant.
// Status changes follow the lifecycle every principal shares (active ↔
// suspended → revoked, principals/lifecycle.ts): never made by a principal on
// itself, and voiding the agent's earlier tokens on every instance through
// the revocation feed, in the same transaction.
// Names, descriptions and metadata arrive within their request rules
// (aegis/agent/v1/agent.proto).
import type { Principal, Prisma } from "../../gen/prisma/client.js";
import type { AuditBase } from "../core/audit.js";
import { type Caller, elevatedScope } from "../core/caller.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError, notFound, permissionDenied } from "../core/errors/domain-error.js";
import { type Page, pageOf } from "../core/pagination.js";
import { assertCovers, parseScopes } from "../policy/scope-checks.js";
import { changePrincipalStatus, type StatusChange } from "../principals/index.js";
import { isId, newId } from "../protocol/ids.js";
import { formatScope } from "../protocol/scope.js";

export type AgentWithGrants = Principal & { grants: { scope: string }[] };

/** An agent of the tenant, or not_found (also for other tenants' agents). */
async function findAgent(db: Prisma.TransactionClient | BrokerContext["prisma"], tenantId: string, agentId: string) {
  const agent = isId("principal", agentId)
    ? await db.principal.findFirst({
        where: { id: agentId, tenantId, kind: "agent" },
        include: { grants: { select: { scope: true } } },
      })
    : null;
  if (!agent) throw notFound("agent", "AGENT_NOT_FOUND");
  return agent;
}

export async function registerAgent(
  ctx: Pick<BrokerContext, "audit">,
  caller: Caller,
  auditBase: AuditBase,
  input: {
    displayName: string;
    description: string;
    ownerId: string;
    metadata: Record<string, string>;
    scopes: string[];
  },
): Promise<AgentWithGrants> {
  const parsed = parseScopes("scopes", input.scopes, { wildcards: true });
  const scopes = parsed.map(formatScope);
  if (scopes.includes(elevatedScope))
    throw permissionDenied("SCOPE_ESCALATION", "the elevated grant cannot be given to an agent");
  assertCovers(caller, parsed, "registering an agent with these scopes");
  const ownerId = input.ownerId || caller.principalId;

  return ctx.audit.transaction(
    async (tx) => {
      const owner = await tx.principal.findFirst({ where: { id: ownerId, tenantId: caller.tenantId } });
      if (!owner) throw notFound("owner", "OWNER_NOT_FOUND");
      if (owner.kind !== "person" || owner.status !== "active") {
        throw new DomainError(
          "failed_precondition",
          "OWNER_NOT_ACTIVE_PERSON",
          "an agent's owner must be an active person",
        );
      }
      const id = newId("principal");
      await tx.principal.create({
        data: {
          id,
          tenantId: caller.tenantId,
          kind: "agent",
          displayName: input.displayName.trim(),
          description: input.description,
          metadata: input.metadata,
          ownerId,
        },
      });
      await tx.grant.createMany({
        data: scopes.map((scope) => ({
          id: newId("grant"),
          tenantId: caller.tenantId,
          principalId: id,
          scope,
          grantedBy: caller.principalId,
        })),
      });
      return findAgent(tx, caller.tenantId, id);
    },
    (agent) => ({ ...auditBase, action: "agent.register", target: agent.id, outcome: "success", reason: "" }),
  );
}

export function getAgent(ctx: Pick<BrokerContext, "prisma">, tenantId: string, agentId: string) {
  return findAgent(ctx.prisma, tenantId, agentId);
}

export async function listAgents(
  ctx: Pick<BrokerContext, "prisma">,
  tenantId: string,
  filter: { status?: Principal["status"]; ownerId?: string },
  page: Page,
) {
  const rows = await ctx.prisma.principal.findMany({
    where: {
      tenantId,
      kind: "agent",
      ...(filter.status ? { status: filter.status } : {}),
      ...(filter.ownerId ? { ownerId: filter.ownerId } : {}),
      ...(page.after ? { id: { gt: page.after } } : {}),
    },
    include: { grants: { select: { scope: true } } },
    orderBy: { id: "asc" },
    take: page.size + 1,
  });
  return pageOf(rows, page, (p) => p.id);
}

export async function updateAgent(
  ctx: Pick<BrokerContext, "audit">,
  caller: Caller,
  auditBase: AuditBase,
  input: { agentId: string; displayName?: string; description?: string; metadata?: Record<string, string> },
): Promise<AgentWithGrants> {
  return ctx.audit.transaction(
    async (tx) => {
      await findAgent(tx, caller.tenantId, input.agentId);
      await tx.principal.update({
        where: { id: input.agentId },
        data: {
          ...(input.displayName !== undefined ? { displayName: input.displayName.trim() } : {}),
          ...(input.description !== undefined ? { description: input.description } : {}),
          ...(input.metadata !== undefined ? { metadata: input.metadata } : {}),
        },
      });
      return findAgent(tx, caller.tenantId, input.agentId);
    },
    () => ({ ...auditBase, action: "agent.update", target: input.agentId, outcome: "success", reason: "" }),
  );
}

/**
 * Moves an agent through its lifecycle (principals/lifecycle.ts: what each
 * move ends is the same for every kind of principal).
 */
export function changeAgentStatus(
  ctx: Pick<BrokerContext, "audit" | "clock" | "config" | "feed">,
  caller: Caller,
  auditBase: AuditBase,
  agentId: string,
  change: StatusChange,
): Promise<AgentWithGrants | undefined> {
  return changePrincipalStatus(
    ctx,
    caller,
    auditBase,
    { principalId: agentId, kind: "agent", noun: "agent", notFound: () => notFound("agent", "AGENT_NOT_FOUND") },
    change,
    (tx) => findAgent(tx, caller.tenantId, agentId),
  );
}
