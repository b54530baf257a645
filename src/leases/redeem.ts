// Redeeming leases, group committed. Redeems that arrive together are
// decided in one transaction: one statement takes uses from every lease in
// the batch under row locks (so the database, not this process, decides who
// gets the last use, across instances), and one audit append records every
// outcome. A lease's fixed facts (tenant, holder, key, target) are cached;
// its uses and state are only ever read under the lock.
import type { Lease } from "../../gen/prisma/client.js";
import type { AuditBase, AuditEntry } from "../core/audit.js";
import type { Caller } from "../core/caller.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError, notFound, permissionDenied } from "../core/errors/domain-error.js";
import type { SqlQuery } from "../db/database.js";
import { GroupCommit } from "../db/group-commit.js";
import { assertTargetAllowed } from "../policy/scope-checks.js";
import { targetOf } from "../policy/targets.js";
import { isId } from "../protocol/ids.js";
import type { Selector } from "../protocol/scope.js";
import { forRecipient } from "../protocol/sealed-jwe.js";
import { effectiveState, endedError } from "./leases.js";

type Ctx = Pick<BrokerContext, "prisma" | "sql" | "audit" | "clock" | "log">;

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
    // On the driver, not Prisma: this transaction is the hot path (see db/database.ts).
    const outcomes = await this.ctx.sql.transaction(async (tx) => {
      const leases = new Map(batch.map((r) => [r.lease.id, r.lease]));
      const asked = new Map<string, number>();
      for (const { lease } of batch) asked.set(lease.id, (asked.get(lease.id) ?? 0) + 1);
      const { material, before } = await this.#take(tx, asked, now);

      // Why the others were refused: their state now (an expiry is recorded once).
      const refusedIds = [...leases.keys()].filter((id) => !before.has(id));
      const current = refusedIds.length
        ? await tx.query<Pick<Lease, "id" | "state" | "expiresAt">>(
            `SELECT id, state::text AS state, expires_at AS "expiresAt" FROM lease WHERE id = ANY($1::text[])`,
            [refusedIds],
          )
        : [];
      const expired = current
        .filter((l) => l.state === "active" && effectiveState(l, now) === "expired")
        .map((l) => l.id);
      if (expired.length) {
        await tx.query(
          `UPDATE lease SET state = 'expired', ended_at = $2::timestamptz WHERE id = ANY($1::text[]) AND state = 'active'`,
          [expired, now.toISOString()],
        );
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
    });
    this.ctx.audit.notify();
    for (const outcome of outcomes) if ("refused" in outcome) outcome.refused.audited = true;
    return outcomes;
  }

  /**
   * One call for the whole batch (`lease_take_uses`, in the migrations):
   * finds, for each lease, the current material sealed for its holder's
   * newest encryption key, and takes as many uses as were asked for and
   * remain from the leases that have such material (row locks decide between
   * concurrent batches and instances). A lease without material for its
   * holder keeps its uses.
   */
  async #take(tx: SqlQuery, asked: ReadonlyMap<string, number>, now: Date) {
    const rows = await tx.query<{
      lease_id: string;
      sealed: string;
      version: number;
      kid: string;
      before: number | null;
    }>("SELECT * FROM lease_take_uses($1::text[], $2::int[], $3::timestamptz)", [
      [...asked.keys()],
      [...asked.values()],
      now.toISOString(),
    ]);
    const material = new Map<string, Omit<Redeemed, "remainingUses">>();
    const before = new Map<string, number>();
    for (const row of rows) {
      const sealedJwe = forRecipient(row.sealed, row.kid);
      // recipient_kids is derived from the JWE itself; a mismatch is corruption, not a refusal.
      if (!sealedJwe) throw new Error(`credential material of lease ${row.lease_id} lacks recipient ${row.kid}`);
      material.set(row.lease_id, { sealedJwe, keyId: row.kid, credentialVersion: Number(row.version) });
      if (row.before !== null) before.set(row.lease_id, Number(row.before));
    }
    return { material, before };
  }
}

function noRecipient(): DomainError {
  return new DomainError(
    "failed_precondition",
    "HOLDER_NOT_RECIPIENT",
    "the credential is no longer sealed for any encryption key of the holder",
  );
}
