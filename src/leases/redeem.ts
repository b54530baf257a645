// Redeeming leases, group committed. Redeems that arrive together are
// decided in one transaction: one statement takes uses from every lease in
// the batch under row locks (so the database, not this process, decides who
// gets the last use, across instances), and one audit append records every
// outcome. A lease's fixed facts (tenant, holder, key, target) are cached;
// its uses and state are only ever read under the lock.
import { type Lease, Prisma } from "../../gen/prisma/client.js";
import type { AuditBase, AuditEntry } from "../audit/audit-chain.js";
import { transactionOptions } from "../audit/audit-log.js";
import type { Caller } from "../auth/caller.js";
import type { BrokerContext } from "../broker-context.js";
import { forRecipient } from "../credentials/sealed-jwe.js";
import { targetOf } from "../credentials/target.js";
import { GroupCommit } from "../db/group-commit.js";
import { DomainError, notFound, permissionDenied } from "../errors/domain-error.js";
import { isId } from "../ids.js";
import type { Selector } from "../policy/scope.js";
import { assertTargetAllowed } from "../policy/scope-checks.js";
import { effectiveState, endedError } from "./leases.js";

type Ctx = Pick<BrokerContext, "prisma" | "audit" | "clock" | "log">;

/** What never changes about a lease. */
interface LeaseFacts {
  readonly id: string;
  readonly tenantId: string;
  readonly holderId: string;
  readonly holderJkt: string;
  readonly credentialId: string | null;
  readonly target: Selector;
}

export interface Redeemed {
  readonly sealedJwe: string;
  readonly keyId: string;
  readonly remainingUses: number;
  readonly credentialVersion: number;
}

interface Request {
  readonly lease: LeaseFacts;
  readonly auditBase: AuditBase;
}

type Outcome = { readonly redeemed: Redeemed } | { readonly refused: DomainError };

const maxCachedLeases = 10_000;

export class LeaseRedeemer {
  readonly #facts = new Map<string, LeaseFacts>();
  readonly #batches: GroupCommit<Request, Outcome>;

  constructor(private readonly ctx: Ctx) {
    this.#batches = new GroupCommit(
      (batch) => this.#write(batch),
      (error, size) => ctx.log.error({ err: error, redeems: size }, "lease redeem batch failed"),
    );
  }

  async redeem(caller: Caller, auditBase: AuditBase, leaseId: string): Promise<Redeemed> {
    const lease = await this.#leaseFacts(caller.tenantId, leaseId);
    assertTargetAllowed(caller, { action: "credential.lease.redeem", selector: lease.target });
    if (lease.holderId !== caller.principalId) {
      throw permissionDenied("NOT_LEASE_HOLDER", "only the lease's holder may redeem it");
    }
    if (caller.dpopJkt !== lease.holderJkt) {
      throw permissionDenied("WRONG_HOLDER_KEY", "the DPoP proof is not made with the lease's key");
    }
    const outcome = await this.#batches.submit({ lease, auditBase });
    if ("refused" in outcome) throw outcome.refused;
    return outcome.redeemed;
  }

  /** The lease's fixed facts; not_found for unknown ids and other tenants' leases. */
  async #leaseFacts(tenantId: string, leaseId: string): Promise<LeaseFacts> {
    let facts = this.#facts.get(leaseId);
    if (!facts && isId("lease", leaseId)) {
      const row = await this.ctx.prisma.lease.findUnique({ where: { id: leaseId } });
      if (row) {
        facts = { ...row, target: targetOf(row) };
        if (this.#facts.size >= maxCachedLeases) this.#facts.delete(this.#facts.keys().next().value as string);
        this.#facts.set(leaseId, facts);
      }
    }
    if (!facts || facts.tenantId !== tenantId) throw notFound("lease", "LEASE_NOT_FOUND");
    return facts;
  }

  async #write(batch: readonly Request[]): Promise<Outcome[]> {
    const now = this.ctx.clock.now();
    const outcomes = await this.ctx.prisma.$transaction(async (tx) => {
      const leases = new Map(batch.map((r) => [r.lease.id, r.lease]));
      const material = await this.#material(tx, [...leases.values()]);

      // Take uses: as many per lease as were asked for and remain.
      const asked = new Map<string, number>();
      for (const { lease } of batch) {
        if (material.has(lease.id)) asked.set(lease.id, (asked.get(lease.id) ?? 0) + 1);
      }
      const before = new Map<string, number>();
      if (asked.size > 0) {
        const wanted = Prisma.join([...asked].map(([id, n]) => Prisma.sql`(${id}, ${n}::int)`));
        const rows = await tx.$queryRaw<{ id: string; before: number }[]>`
          UPDATE lease l
             SET remaining_uses = b.before - LEAST(w.n, b.before),
                 state = CASE WHEN b.before <= w.n THEN 'exhausted'::lease_state ELSE l.state END,
                 ended_at = CASE WHEN b.before <= w.n THEN ${now} ELSE l.ended_at END
            FROM (SELECT id, remaining_uses AS before FROM lease
                   WHERE id IN (${Prisma.join([...asked.keys()])})
                     AND state = 'active' AND remaining_uses > 0 AND expires_at > ${now}
                   FOR UPDATE) b,
                 (VALUES ${wanted}) AS w(id, n)
           WHERE l.id = b.id AND w.id = b.id
       RETURNING l.id, b.before`;
        for (const row of rows) before.set(row.id, Number(row.before));
      }

      // Why the others were refused: their state now (an expiry is recorded once).
      const refusedIds = [...leases.keys()].filter((id) => !before.has(id));
      const current = refusedIds.length
        ? await tx.$queryRaw<Pick<Lease, "id" | "state" | "expiresAt">[]>`
            SELECT id, state::text AS state, expires_at AS "expiresAt" FROM lease WHERE id IN (${Prisma.join(refusedIds)})`
        : [];
      const expired = current
        .filter((l) => l.state === "active" && effectiveState(l, now) === "expired")
        .map((l) => l.id);
      if (expired.length) {
        await tx.lease.updateMany({
          where: { id: { in: expired }, state: "active" },
          data: { state: "expired", endedAt: now },
        });
      }
      const stateOf = new Map(current.map((l) => [l.id, effectiveState(l, now)]));

      const left = new Map(before);
      const results: Outcome[] = batch.map(({ lease }) => {
        const sealed = material.get(lease.id);
        const state = stateOf.get(lease.id);
        if (!sealed) return { refused: state && state !== "active" ? endedError(state) : noRecipient() };
        const uses = left.get(lease.id) ?? 0;
        if (uses === 0) return { refused: endedError(state ?? "exhausted") };
        left.set(lease.id, uses - 1);
        return { redeemed: { ...sealed, remainingUses: uses - 1 } };
      });

      const entries: AuditEntry[] = batch.map(({ lease, auditBase }, i) => {
        const result = results[i] as Outcome;
        return "redeemed" in result
          ? {
              ...auditBase,
              action: "credential.lease.redeem",
              target: lease.id,
              outcome: "success",
              reason: `remaining ${result.redeemed.remainingUses} key ${result.redeemed.keyId}`,
            }
          : {
              ...auditBase,
              action: "credential.lease.redeem",
              target: lease.id,
              outcome: "denied",
              reason: result.refused.auditReason,
            };
      });
      for (const id of expired) {
        const base = batch.find((r) => r.lease.id === id)?.auditBase as AuditBase;
        entries.push({ ...base, action: "credential.lease.expire", target: id, outcome: "success", reason: "" });
      }
      await this.ctx.audit.appendInTransaction(tx, entries);
      return results;
    }, transactionOptions);
    this.ctx.audit.notify();
    for (const outcome of outcomes) if ("refused" in outcome) outcome.refused.audited = true;
    return outcomes;
  }

  /** For each lease, the credential's current material for its holder's own key, if there is one. */
  async #material(tx: Prisma.TransactionClient, leases: LeaseFacts[]) {
    const credentialIds = [...new Set(leases.flatMap((l) => (l.credentialId ? [l.credentialId] : [])))];
    const holderIds = [...new Set(leases.map((l) => l.holderId))];
    // Plain SQL: these run on every batch, and Prisma plans `IN` lists anew for each length.
    const credentials = credentialIds.length
      ? await tx.$queryRaw<{ id: string; sealed: string; recipientKids: string; version: number }[]>`
          SELECT id, sealed, recipient_kids AS "recipientKids", version FROM credential
           WHERE id IN (${Prisma.join(credentialIds)})`
      : [];
    const keys = await tx.$queryRaw<{ id: string; principalId: string }[]>`
      SELECT id, principal_id AS "principalId" FROM agent_key
       WHERE principal_id IN (${Prisma.join(holderIds)}) AND use = 'encryption' AND revoked_at IS NULL
       ORDER BY created_at DESC`;
    const material = new Map<string, Omit<Redeemed, "remainingUses">>();
    for (const lease of leases) {
      const credential = credentials.find((c) => c.id === lease.credentialId);
      if (!credential) continue;
      const recipients = new Set(credential.recipientKids.split(" "));
      const key = keys.find((k) => k.principalId === lease.holderId && recipients.has(k.id));
      const sealedJwe = key && forRecipient(credential.sealed, key.id);
      if (key && sealedJwe) material.set(lease.id, { sealedJwe, keyId: key.id, credentialVersion: credential.version });
    }
    return material;
  }
}

function noRecipient(): DomainError {
  return new DomainError(
    "failed_precondition",
    "HOLDER_NOT_RECIPIENT",
    "the credential is no longer sealed for any encryption key of the holder",
  );
}
