// Reading the audit trail: filtered pages, full-chain verification, and the
// follow-along stream behind TailAuditEvents.

import type { Prisma } from "../../gen/prisma/client.js";
import { type Caller, isElevated } from "../core/caller.js";
import type { BrokerContext } from "../core/context.js";
import { invalidArgument, notFound } from "../core/errors/domain-error.js";
import { keyPurposes } from "../core/key-purposes.js";
import type { Page } from "../core/pagination.js";
import { type ChainedAuditEvent, type ChainVerdict, findChainBreak, genesisHash } from "./audit-chain.js";

export interface AuditFilter {
  readonly tenantId?: string;
  readonly actorId?: string;
  readonly action?: string;
  readonly outcome?: "success" | "denied";
  readonly startTime?: Date;
  readonly endTime?: Date;
}

/**
 * The tenant a caller may read: its own, or (elevated callers only) any named
 * one or all. Naming another tenant without the elevated grant looks exactly
 * like naming one that does not exist.
 */
export function scopeFilter(caller: Caller, filter: AuditFilter): AuditFilter {
  if (isElevated(caller)) return filter;
  if (filter.tenantId && filter.tenantId !== caller.tenantId) throw notFound("tenant", "TENANT_NOT_FOUND");
  return { ...filter, tenantId: caller.tenantId };
}

function where(filter: AuditFilter, afterSeq: bigint): Prisma.AuditEventWhereInput {
  if (filter.startTime && filter.endTime && filter.startTime >= filter.endTime) {
    throw invalidArgument([{ field: "filter.end_time", description: "must be after start_time" }]);
  }
  return {
    seq: { gt: afterSeq },
    ...(filter.tenantId ? { tenantId: filter.tenantId } : {}),
    ...(filter.actorId ? { actorId: filter.actorId } : {}),
    ...(filter.action ? { action: filter.action } : {}),
    ...(filter.outcome ? { outcome: filter.outcome } : {}),
    ...(filter.startTime || filter.endTime
      ? { time: { ...(filter.startTime && { gte: filter.startTime }), ...(filter.endTime && { lt: filter.endTime }) } }
      : {}),
  };
}

function afterOf(page: Page): bigint {
  if (page.after === undefined) return 0n;
  if (!/^\d{1,19}$/.test(page.after)) {
    throw invalidArgument([{ field: "page_token", description: "is not a token returned by this method" }]);
  }
  return BigInt(page.after);
}

export async function queryAuditEvents(ctx: Pick<BrokerContext, "prisma">, filter: AuditFilter, page: Page) {
  const rows = await ctx.prisma.auditEvent.findMany({
    where: where(filter, afterOf(page)),
    orderBy: { seq: "asc" },
    take: page.size + 1,
  });
  const items = rows.slice(0, page.size);
  const last = items.at(-1);
  const nextPageToken = rows.length > page.size && last ? Buffer.from(`v1:${last.seq}`).toString("base64url") : "";
  return { items, nextPageToken };
}

/** Walks the whole chain in batches and checks it reaches the recorded head. */
export async function verifyAuditChain(
  ctx: Pick<BrokerContext, "prisma" | "rootKey">,
  batchSize = 2000,
): Promise<ChainVerdict> {
  const key = auditChainKey(ctx.rootKey);
  // Read the head first: events appended while we walk lie beyond it.
  const head = await ctx.prisma.auditChainHead.findUnique({ where: { id: 1 } });
  const headSeq = head?.seq ?? 0n;
  let previous = { seq: 0n, hash: genesisHash };
  let checked = 0n;
  for (;;) {
    const events: ChainedAuditEvent[] = await ctx.prisma.auditEvent.findMany({
      where: { seq: { gt: previous.seq, lte: headSeq } },
      orderBy: { seq: "asc" },
      take: batchSize,
    });
    const broken = findChainBreak(key, events, previous);
    if (broken) return { intact: false, eventsChecked: checked, firstBadSeq: broken.seq, problem: broken.problem };
    checked += BigInt(events.length);
    const last = events.at(-1);
    if (!last) break;
    previous = last;
  }
  if (previous.seq !== headSeq || (head && previous.hash !== head.hash)) {
    return {
      intact: false,
      eventsChecked: checked,
      firstBadSeq: previous.seq + 1n,
      problem: `chain ends at ${previous.seq} but the head records ${headSeq}: events were removed`,
    };
  }
  return { intact: true, eventsChecked: checked, firstBadSeq: 0n, problem: "" };
}

export function auditChainKey(rootKey: BrokerContext["rootKey"]): Buffer {
  return rootKey.deriveKey(keyPurposes.auditChain);
}

/**
 * Yields matching events after `afterSeq` (0: from now on) until `signal`
 * aborts. Wakes when this instance writes and polls for other instances'
 * writes, so it follows the shared chain, not only local events.
 */
export async function* tailAuditEvents(
  ctx: Pick<BrokerContext, "prisma" | "audit">,
  filter: AuditFilter,
  afterSeq: bigint,
  signal: AbortSignal,
  pollMs = 1000,
): AsyncGenerator<ChainedAuditEvent> {
  let cursor = afterSeq;
  if (cursor === 0n) {
    cursor = (await ctx.prisma.auditChainHead.findUnique({ where: { id: 1 } }))?.seq ?? 0n;
  }
  let wake: (() => void) | undefined;
  const unsubscribe = ctx.audit.onAppended(() => wake?.());
  const onAbort = () => wake?.();
  signal.addEventListener("abort", onAbort);
  try {
    while (!signal.aborted) {
      const events = await ctx.prisma.auditEvent.findMany({
        where: where(filter, cursor),
        orderBy: { seq: "asc" },
        take: 500,
      });
      for (const event of events) {
        cursor = event.seq;
        yield event;
      }
      if (events.length === 500) continue;
      // Nothing matching beyond the cursor; skip non-matching events too.
      const head = await ctx.prisma.auditChainHead.findUnique({ where: { id: 1 } });
      if (head && head.seq > cursor) cursor = head.seq;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pollMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    unsubscribe();
    signal.removeEventListener("abort", onAbort);
  }
}
