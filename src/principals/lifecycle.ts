// The lifecycle every principal kind shares (active ↔ suspended → revoked,
// or deleted), and what ending one's access means, written once for agents
// and people alike. In the transaction that changes the status:
//
// - suspending, revoking or deleting voids every token issued to the
//   principal before now, on every instance (revocation feed: a principal
//   cutoff, which also drops its API keys from every instance's cache), ends
//   its active leases (kept, revoked, for the record), its sign-in sessions,
//   refresh tokens, user API tokens, open enrollment codes, device logins it
//   approved that were not yet exchanged, and authorization codes not yet
//   redeemed: none of them comes back on reactivation;
// - revoking also ends its API keys and public keys for good, and deletes
//   its local password;
// - API keys of a suspended principal stay, refused while it is suspended
//   (the authenticators check the status), as they were before.
//
// Nobody changes their own status, and every change needs what issuing the
// principal a credential needs (policy/credential-issuance.ts): the
// credential presented covers every grant the principal holds. Reactivating
// gives all of them back, with its API keys; suspending, revoking or
// deleting takes them away, which a narrow credential must not do to
// someone more privileged than it (a helpdesk token holding person.remove
// alone cannot remove a tenant admin). A tenant admin covers the people and
// agents it manages.
import type { Prisma } from "../../gen/prisma/client.js";
import type { AuditBase } from "../core/audit.js";
import type { Caller } from "../core/caller.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError, permissionDenied } from "../core/errors/domain-error.js";
import { principalCutoff, RevocationFeed } from "../core/revocation-feed.js";
import { endActiveLeases } from "../leases/index.js";
import { credentialHolderFor } from "../policy/credential-issuance.js";
import { isId } from "../protocol/ids.js";
import { lockPrincipal } from "./principals.js";

export type StatusChange = "suspend" | "reactivate" | "revoke" | "delete";
type Status = "active" | "suspended" | "revoked";

const transitions: Record<StatusChange, { from: Status[]; to: Status | "deleted" }> = {
  suspend: { from: ["active"], to: "suspended" },
  reactivate: { from: ["suspended"], to: "active" },
  revoke: { from: ["active", "suspended"], to: "revoked" },
  delete: { from: ["active", "suspended", "revoked"], to: "deleted" },
};

export interface LifecycleTarget {
  readonly principalId: string;
  readonly kind: "agent" | "person";
  /** How the kind calls itself in errors and the audit trail, e.g. `agent`, `person`. */
  readonly noun: string;
  /** The verb of the audit action, e.g. `remove` for a person's revoke (`person.remove`). */
  readonly verb?: string;
  /** The error for an id that is not a principal of this kind in the caller's tenant. */
  readonly notFound: () => DomainError;
}

/**
 * Moves a principal of the caller's tenant through its lifecycle and ends
 * what the move ends (see above); `finish` completes the change for the kind and reads the result in the same
 * transaction (not called on delete). Audited as `<noun>.<verb or change>`.
 */
export async function changePrincipalStatus<T>(
  ctx: Pick<BrokerContext, "audit" | "clock" | "config" | "feed">,
  caller: Caller,
  auditBase: AuditBase,
  target: LifecycleTarget,
  change: StatusChange,
  finish: (tx: Prisma.TransactionClient) => Promise<T>,
): Promise<T | undefined> {
  const id = target.principalId;
  if (id === caller.principalId) {
    throw permissionDenied("SELF_STATUS_CHANGE", "a principal cannot change its own status");
  }
  const now = ctx.clock.now();
  const cutoff = principalCutoff(id, now, ctx.config.tokenLifetime.maxSeconds);
  const rule = transitions[change];
  const result = await ctx.audit.transaction(
    async (tx) => {
      if (!isId("principal", id)) throw target.notFound();
      await lockPrincipal(tx, id);
      const principal = await tx.principal.findFirst({ where: { id, tenantId: caller.tenantId, kind: target.kind } });
      if (!principal) throw target.notFound();
      await credentialHolderFor(tx, caller, id, `${gerund(target.verb ?? change)} ${article(target.noun)}`);
      if (!rule.from.includes(principal.status)) {
        throw new DomainError(
          "failed_precondition",
          "INVALID_TRANSITION",
          `cannot ${target.verb ?? change} ${article(target.noun)} that is ${principal.status}`,
        );
      }
      if (rule.to !== "active") {
        await RevocationFeed.publish(tx, cutoff);
        await endIssuedAccess(tx, id, `holder ${rule.to}`, now);
      }
      if (rule.to === "deleted") {
        await tx.principal.delete({ where: { id } });
        return undefined;
      }
      if (rule.to === "revoked") {
        await tx.apiKey.updateMany({ where: { principalId: id, revokedAt: null }, data: { revokedAt: now } });
        await tx.agentKey.updateMany({ where: { principalId: id, revokedAt: null }, data: { revokedAt: now } });
        await tx.localAccount.deleteMany({ where: { principalId: id } });
      }
      await tx.principal.update({ where: { id }, data: { status: rule.to } });
      return finish(tx);
    },
    () => ({
      ...auditBase,
      action: `${target.noun}.${target.verb ?? change}`,
      target: id,
      outcome: "success",
      reason: "",
    }),
  );
  if (rule.to !== "active") ctx.feed.apply(cutoff);
  return result;
}

/**
 * Ends, for good, what was issued to a principal that is being barred: its
 * leases, sign-in sessions, refresh tokens, user API tokens, open
 * enrollment codes, device logins it approved (or had yet to decide) that
 * were not exchanged, now denied, and authorization codes not yet redeemed,
 * deleted (a redemption then finds no code: invalid_grant). Its earlier
 * access tokens are voided by the caller's principal cutoff.
 */
async function endIssuedAccess(tx: Prisma.TransactionClient, principalId: string, reason: string, now: Date) {
  await endActiveLeases(tx, { holderId: principalId }, reason, now);
  await tx.webSession.deleteMany({ where: { principalId } });
  await tx.refreshToken.updateMany({ where: { principalId, revokedAt: null }, data: { revokedAt: now } });
  await tx.apiKey.updateMany({
    where: { principalId, kind: "user_token", revokedAt: null },
    data: { revokedAt: now },
  });
  await tx.enrollment.updateMany({
    where: { principalId, usedAt: null, revokedAt: null },
    data: { revokedAt: now },
  });
  await tx.deviceAuthorization.updateMany({
    where: { principalId, status: { in: ["pending", "approved"] } },
    data: { status: "denied" },
  });
  await tx.authorizationCode.deleteMany({ where: { principalId, redeemedAt: null } });
}

/** `suspend` → `suspending`, `remove` → `removing`: how the refusal names the change. */
const gerund = (verb: string) => `${verb.replace(/e$/, "")}ing`;
const article = (noun: string) => (/^[aeiou]/.test(noun) ? `an ${noun}` : `a ${noun}`);
