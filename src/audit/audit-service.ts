// AuditService handlers.
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  type AuditFilter as AuditFilterMessage,
  AuditService,
  Outcome,
} from "../../gen/proto/aegis/audit/v1/audit_pb.js";
import { callerOf } from "../core/call.js";
import type { BrokerContext } from "../core/context.js";
import { readPage } from "../core/pagination.js";
import type { ChainedAuditEvent } from "./audit-chain.js";
import { type AuditFilter, queryAuditEvents, scopeFilter, tailAuditEvents, verifyAuditChain } from "./audit-queries.js";

export { AuditService };

const outcomes = { success: Outcome.SUCCESS, denied: Outcome.DENIED } as const;

export function auditService(ctx: BrokerContext): ServiceImpl<typeof AuditService> {
  return {
    async queryAuditEvents(req, call) {
      const filter = filterOf(call, req.filter);
      const { items, nextPageToken } = await queryAuditEvents(ctx, filter, readPage(req));
      return { events: items.map(toMessage), nextPageToken };
    },
    async verifyAuditChain() {
      return verifyAuditChain(ctx);
    },
    async *tailAuditEvents(req, call) {
      const filter = filterOf(call, req.filter);
      const signal = AbortSignal.any([call.signal, ctx.closing]);
      for await (const event of tailAuditEvents(ctx, filter, req.afterSeq, signal)) {
        yield { event: toMessage(event) };
      }
    },
  };
}

function filterOf(call: HandlerContext, message: AuditFilterMessage | undefined): AuditFilter {
  const outcome =
    message?.outcome === Outcome.SUCCESS ? "success" : message?.outcome === Outcome.DENIED ? "denied" : undefined;
  return scopeFilter(callerOf(call), {
    tenantId: message?.tenantId || undefined,
    actorId: message?.actorId || undefined,
    action: message?.action || undefined,
    outcome,
    startTime: message?.startTime ? timestampDate(message.startTime) : undefined,
    endTime: message?.endTime ? timestampDate(message.endTime) : undefined,
  });
}

function toMessage(event: ChainedAuditEvent) {
  return {
    seq: event.seq,
    time: timestampFromDate(event.time),
    requestId: event.requestId,
    tenantId: event.tenantId ?? "",
    actorId: event.actorId ?? "",
    client: event.client,
    action: event.action,
    target: event.target,
    outcome: outcomes[event.outcome],
    reason: event.reason,
    prevHash: event.prevHash,
    hash: event.hash,
  };
}
