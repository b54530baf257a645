// LeaseService handlers: decode, call one domain function, encode.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { Lease } from "../../gen/prisma/client.js";
import { type LeaseSchema, LeaseService, LeaseState } from "../../gen/proto/aegis/lease/v1/lease_pb.js";
import { auditBase, callerOf } from "../core/call.js";
import type { BrokerContext } from "../core/context.js";
import { optionalSeconds } from "../core/duration.js";
import { readPage } from "../core/pagination.js";
import { targetOf } from "../policy/targets.js";
import { LeaseCreator } from "./create.js";
import { createLease, effectiveState, getLease, listLeases, revokeLease } from "./leases.js";
import { LeaseRedeemer } from "./redeem.js";

export { LeaseService };

const states = {
  active: LeaseState.ACTIVE,
  exhausted: LeaseState.EXHAUSTED,
  revoked: LeaseState.REVOKED,
  expired: LeaseState.EXPIRED,
} as const satisfies Record<Lease["state"], LeaseState>;

export function leaseService(ctx: BrokerContext): ServiceImpl<typeof LeaseService> {
  const creator = new LeaseCreator(ctx);
  const redeemer = new LeaseRedeemer(ctx);
  const toLease = (lease: Lease): MessageInitShape<typeof LeaseSchema> => ({
    id: lease.id,
    credentialId: lease.credentialId ?? "",
    target: targetOf(lease),
    holderId: lease.holderId,
    holderJkt: lease.holderJkt,
    createdBy: lease.createdBy,
    maxUses: lease.maxUses,
    remainingUses: lease.remainingUses,
    state: states[effectiveState(lease, ctx.clock.now())],
    expireTime: timestampFromDate(lease.expiresAt),
    createTime: timestampFromDate(lease.createdAt),
    ...(lease.endedAt ? { endTime: timestampFromDate(lease.endedAt) } : {}),
  });
  return {
    async createLease(req, call) {
      const input = { ...req, lifetimeSeconds: optionalSeconds(req.lifetime) };
      return { lease: toLease(await createLease(ctx, creator, callerOf(call), auditBase(call), input)) };
    },
    async redeemLease(req, call) {
      return redeemer.redeem(callerOf(call), auditBase(call), req.leaseId);
    },
    async revokeLease(req, call) {
      return { lease: toLease(await revokeLease(ctx, callerOf(call), auditBase(call), req.leaseId)) };
    },
    async getLease(req, call) {
      return { lease: toLease(await getLease(ctx, callerOf(call), req.leaseId)) };
    },
    async listLeases(req, call) {
      const state = (Object.keys(states) as Lease["state"][]).find((k) => states[k] === req.state);
      const { items, nextPageToken } = await listLeases(
        ctx,
        callerOf(call),
        { ...(state ? { state } : {}), holderId: req.holderId, credentialId: req.credentialId },
        readPage(req),
      );
      return { leases: items.map(toLease), nextPageToken };
    },
  };
}
