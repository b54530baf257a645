// Leases: time-boxed, use-counted access to one credential for one holder
// key. Target, holder and key are fixed at creation; state and uses change
// only through conditional updates in the database, so transitions are
// one-way and a lease's last use is redeemed exactly once, whatever the
// number of concurrent attempts or broker instances (redeem.ts).
import type { Lease, Prisma } from "../../gen/prisma/client.js";
import type { AuditBase } from "../core/audit.js";
import type { Caller } from "../core/caller.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError, invalidArgument, notFound, permissionDenied } from "../core/errors/domain-error.js";
import { type Page, pageOf } from "../core/pagination.js";
import { assertTargetAllowed } from "../policy/scope-checks.js";
import { coveredTargets, parseTarget, targetOf } from "../policy/targets.js";
import { isId } from "../protocol/ids.js";
import { type Selector, targetKeys } from "../protocol/scope.js";
import type { LeaseCreator } from "./create.js";

type Ctx = Pick<BrokerContext, "prisma" | "audit" | "clock">;
type Db = Prisma.TransactionClient | BrokerContext["prisma"];

// The upper bounds (86400 seconds, 10000 uses) are request rules in lease.proto.
const defaultLifetimeSeconds = 300;

const jktPattern = /^[A-Za-z0-9_-]{43}$/;

/** Why a lease in `state` cannot be redeemed. */
export function endedError(state: Lease["state"]): DomainError {
  const reasons = {
    exhausted: ["LEASE_EXHAUSTED", "every use of the lease was redeemed"],
    revoked: ["LEASE_REVOKED", "the lease was revoked"],
    expired: ["LEASE_EXPIRED", "the lease expired"],
    active: ["LEASE_NOT_REDEEMABLE", "the lease cannot be redeemed now"],
  } as const satisfies Record<Lease["state"], readonly [string, string]>;
  const [reason, message] = reasons[state];
  return new DomainError("failed_precondition", reason, message);
}

/** The state to show: an active lease past its expiry is expired, whether or not a redeem has noticed yet. */
export function effectiveState(lease: Pick<Lease, "state" | "expiresAt">, now: Date): Lease["state"] {
  return lease.state === "active" && lease.expiresAt <= now ? "expired" : lease.state;
}

/** A lease of the caller's tenant whose target `action` grants cover; not_found for other tenants' ids. */
async function findLease(db: Db, caller: Caller, leaseId: string, action: string): Promise<Lease> {
  const lease = isId("lease", leaseId)
    ? await db.lease.findFirst({ where: { id: leaseId, tenantId: caller.tenantId } })
    : null;
  if (!lease) throw notFound("lease", "LEASE_NOT_FOUND");
  assertTargetAllowed(caller, { action, selector: targetOf(lease) });
  return lease;
}

export interface CreateLeaseInput {
  readonly target?: Partial<Selector> | undefined;
  /** Undefined: the default, five minutes. */
  readonly lifetimeSeconds: number | undefined;
  readonly maxUses: number;
  readonly holderId: string;
  readonly holderJkt: string;
  readonly idempotencyKey?: string;
}

export async function createLease(
  ctx: Ctx,
  creator: LeaseCreator,
  caller: Caller,
  auditBase: AuditBase,
  input: CreateLeaseInput,
) {
  const target = parseTarget("target", input.target);
  const lifetime = input.lifetimeSeconds ?? defaultLifetimeSeconds;
  const maxUses = input.maxUses || 1;
  const delegated = input.holderId !== "" && input.holderId !== caller.principalId;
  // Not a request rule: the thumbprint is required only for a delegated lease.
  if (delegated && !jktPattern.test(input.holderJkt)) {
    throw invalidArgument([
      { field: "holder_jkt", description: "a lease for another agent needs its key's JWK thumbprint" },
    ]);
  }
  const idempotencyKey = input.idempotencyKey ?? "";
  assertTargetAllowed(caller, { action: "credential.lease.create", selector: target });
  if (delegated) assertTargetAllowed(caller, { action: "credential.lease.delegate", selector: target });
  const holderJkt = delegated ? input.holderJkt : caller.dpopJkt;
  if (!holderJkt) throw permissionDenied("DPOP_REQUIRED", "creating a lease needs a DPoP-bound token");
  const holderId = delegated ? input.holderId : caller.principalId;

  // A retry with the same key gets the first call's lease, if it asked for the same.
  const earlier = () =>
    idempotencyKey
      ? ctx.prisma.lease.findUnique({
          where: { createdBy_idempotencyKey: { createdBy: caller.principalId, idempotencyKey } },
        })
      : Promise.resolve(null);
  const sameRequest = (lease: Lease) => {
    if (
      lease.holderId !== holderId ||
      lease.maxUses !== maxUses ||
      targetKeys.some((key) => lease[key] !== target[key])
    ) {
      throw new DomainError(
        "failed_precondition",
        "IDEMPOTENCY_KEY_REUSED",
        "this idempotency key was used for another lease request",
      );
    }
    return lease;
  };
  const before = await earlier();
  if (before) return sameRequest(before);

  const created = await creator.create({
    tenantId: caller.tenantId,
    target,
    holderId,
    holderJkt,
    delegated,
    createdBy: caller.principalId,
    maxUses,
    expiresAt: new Date(ctx.clock.now().getTime() + lifetime * 1000),
    idempotencyKey: idempotencyKey || null,
    auditBase,
  });
  if ("lease" in created) return created.lease;
  if ("refused" in created) throw created.refused;
  // A concurrent retry with the same key was inserted first: answer with it.
  const winner = await earlier();
  if (!winner) throw new Error("lease idempotency conflict without a winner");
  return sameRequest(winner);
}

export async function revokeLease(ctx: Ctx, caller: Caller, auditBase: AuditBase, leaseId: string): Promise<Lease> {
  const lease = await findLease(ctx.prisma, caller, leaseId, "credential.lease.revoke");
  const now = ctx.clock.now();
  return ctx.audit.transaction(
    async (tx) => {
      await tx.lease.updateMany({
        where: { id: lease.id, state: "active" },
        data: { state: "revoked", endedAt: now, endReason: `revoked by ${caller.principalId}` },
      });
      return tx.lease.findUniqueOrThrow({ where: { id: lease.id } });
    },
    (l) => ({
      ...auditBase,
      action: "credential.lease.revoke",
      target: l.id,
      outcome: "success",
      reason: lease.state === "active" ? "" : `already ${lease.state}`,
    }),
  );
}

export function getLease(ctx: Pick<Ctx, "prisma">, caller: Caller, leaseId: string): Promise<Lease> {
  return findLease(ctx.prisma, caller, leaseId, "credential.lease.read");
}

export async function listLeases(
  ctx: Pick<Ctx, "prisma" | "clock">,
  caller: Caller,
  filter: { state?: Lease["state"]; holderId: string; credentialId: string },
  page: Page,
) {
  const now = ctx.clock.now();
  // Expired-by-time leases may still say active in the table.
  const state =
    filter.state === "active"
      ? { state: "active" as const, expiresAt: { gt: now } }
      : filter.state === "expired"
        ? { OR: [{ state: "expired" as const }, { state: "active" as const, expiresAt: { lte: now } }] }
        : filter.state
          ? { state: filter.state }
          : {};
  const rows = await ctx.prisma.lease.findMany({
    where: {
      tenantId: caller.tenantId,
      AND: [coveredTargets(caller.scopes, "credential.lease.read"), state],
      ...(filter.holderId ? { holderId: filter.holderId } : {}),
      ...(filter.credentialId ? { credentialId: filter.credentialId } : {}),
      ...(page.after ? { id: { gt: page.after } } : {}),
    },
    orderBy: { id: "asc" },
    take: page.size + 1,
  });
  return pageOf(rows, page, (l) => l.id);
}
