// One-time enrollment codes: how a person added by a tenant admin sets their
// own password. A code is a credential of its person (`aegis_en_…`, the
// format of API keys, so secret scanners know it): shown once, stored only
// as an HMAC under a key of its own purpose, looked up by its id part,
// compared in constant time, expiring (AEGIS_ENROLLMENT_TTL_S), and used at
// most once (a conditional update claims it). Issuing a new one ends the
// person's earlier open codes; so does suspending or removing the person.
//
// A code sets the password of its person, so it must never be worth more
// than the credential that issued it covered (the credential rule, checked
// when it is issued). Grants given to the person later would make it so:
// a helpdesk holding person.create keeps the code of a new hire whom an
// admin then makes a tenant admin. So giving a principal any grant (directly
// or by a role) ends its open codes in the same transaction
// (`endOpenEnrollments`), and the admin issues a new one, which applies the
// rule to what the person holds by then. (The other way, re-checking the
// issuer at redemption, would need the issuing credential's scopes kept
// with the code, and would still miss a credential narrowed since.)
import type { Prisma } from "../../gen/prisma/client.js";
import { hashCredential } from "../auth/api-keys.js";
import { hashPassword } from "../auth/passwords.js";
import type { AuditEntry } from "../core/audit.js";
import type { CallOrigin } from "../core/call.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError } from "../core/errors/domain-error.js";
import { keyPurposes } from "../core/key-purposes.js";
import { sameSecret } from "../crypto/constant-time.js";
import { generateCredential, parseCredential } from "../protocol/credential-format.js";

export interface IssuedEnrollment {
  /** The code itself: returned once, never stored. */
  readonly code: string;
  readonly expiresAt: Date;
  readonly enrollmentUri: string;
  readonly enrollmentUriComplete: string;
}

type EnrollmentContext = Pick<BrokerContext, "clock" | "config" | "rootKey">;

const hashKeyOf = (ctx: Pick<BrokerContext, "rootKey">) => ctx.rootKey.deriveKey(keyPurposes.enrollmentCodeHash);

/** The page where codes are entered (`/enroll`), with and without the code. */
function enrollmentUris(publicUrl: string, code: string) {
  const enrollmentUri = `${publicUrl}/enroll`;
  return { enrollmentUri, enrollmentUriComplete: `${enrollmentUri}?code=${encodeURIComponent(code)}` };
}

/**
 * Issues a code for `principalId` in the caller's transaction, ending the
 * person's earlier open codes. The caller has applied the credential rule.
 */
export async function issueEnrollment(
  ctx: EnrollmentContext,
  tx: Prisma.TransactionClient,
  input: { tenantId: string; principalId: string; createdBy: string },
): Promise<IssuedEnrollment> {
  const now = ctx.clock.now();
  await endOpenEnrollments(tx, input.principalId, now);
  const credential = generateCredential("enrollment");
  const expiresAt = new Date(now.getTime() + ctx.config.enrollmentSeconds * 1000);
  await tx.enrollment.create({
    data: {
      id: credential.id,
      tenantId: input.tenantId,
      principalId: input.principalId,
      codeHash: hashCredential(hashKeyOf(ctx), credential.text).toString("hex"),
      createdBy: input.createdBy,
      expiresAt,
    },
  });
  return { code: credential.text, expiresAt, ...enrollmentUris(ctx.config.publicUrl, credential.text) };
}

/**
 * Ends the principal's open codes in the caller's transaction: when a new
 * one is issued, and when the principal is given grants (see above). The
 * caller holds the principal's row (`lockPrincipal`), so an issue running
 * at the same time either sees the new grants or has its code ended here.
 */
export async function endOpenEnrollments(tx: Prisma.TransactionClient, principalId: string, now: Date): Promise<void> {
  await tx.enrollment.updateMany({
    where: { principalId, usedAt: null, revokedAt: null },
    data: { revokedAt: now },
  });
}

/** Why a code was refused: the page says only that it is not valid; the audit trail says which. */
const refused = (detail: string) =>
  new DomainError("permission_denied", "ENROLLMENT_CODE_INVALID", "this enrollment code is not valid", { detail });

/** The open enrollment a code stands for, and its active person; refused the same way whatever is wrong. */
export async function findEnrollment(ctx: Pick<BrokerContext, "prisma" | "clock" | "rootKey">, code: string) {
  const parsed = parseCredential(code.trim());
  if (parsed?.kind !== "enrollment") throw refused("not an enrollment code");
  const row = await ctx.prisma.enrollment.findUnique({
    where: { id: parsed.id },
    include: { principal: { include: { person: true } } },
  });
  if (!row || !sameSecret(hashCredential(hashKeyOf(ctx), parsed.text), Buffer.from(row.codeHash, "hex"))) {
    throw refused(`enrollment ${parsed.id} unknown or secret does not match`);
  }
  if (row.usedAt) throw refused(`enrollment ${row.id} was already used`);
  if (row.revokedAt) throw refused(`enrollment ${row.id} was replaced or ended`);
  if (row.expiresAt <= ctx.clock.now()) throw refused(`enrollment ${row.id} expired`);
  if (row.principal.kind !== "person" || row.principal.status !== "active") {
    throw refused(`principal ${row.principalId} is ${row.principal.status}`);
  }
  return row;
}

/**
 * Sets the person's password with their code, once: the claim is a
 * conditional update, so two posts of one code set at most one password.
 * Audited as `person.enroll` (success or refusal); the person's open web
 * sessions end, since the password they were made with no longer counts.
 */
export async function enrollWithCode(
  ctx: Pick<BrokerContext, "prisma" | "clock" | "rootKey" | "audit">,
  site: CallOrigin,
  input: { code: string; password: string },
): Promise<{ principalId: string; tenantId: string; signInName: string }> {
  const base = { requestId: site.requestId, client: site.client, action: "person.enroll" };
  let row: Awaited<ReturnType<typeof findEnrollment>>;
  try {
    row = await findEnrollment(ctx, input.code);
  } catch (error) {
    if (error instanceof DomainError)
      await ctx.audit.denied({ ...base, tenantId: null, actorId: null }, base.action, "", error);
    throw error;
  }
  const passwordHash = await hashPassword(input.password);
  const now = ctx.clock.now();
  const success = (reason: string): AuditEntry => ({
    ...base,
    tenantId: row.tenantId,
    actorId: row.principalId,
    target: row.principalId,
    outcome: "success",
    reason,
  });
  return ctx.audit
    .transaction(
      async (tx) => {
        const claimed = await tx.enrollment.updateMany({
          where: { id: row.id, usedAt: null, revokedAt: null, expiresAt: { gt: now } },
          data: { usedAt: now },
        });
        if (claimed.count !== 1) throw refused(`enrollment ${row.id} was used concurrently`);
        await tx.localAccount.upsert({
          where: { principalId: row.principalId },
          create: { principalId: row.principalId, passwordHash },
          update: { passwordHash },
        });
        await tx.webSession.deleteMany({ where: { principalId: row.principalId } });
        return {
          principalId: row.principalId,
          tenantId: row.tenantId,
          signInName: row.principal.person?.username ?? row.principal.person?.email ?? "",
        };
      },
      () => success(`enrollment ${row.id}`),
    )
    .catch(async (error: unknown) => {
      if (error instanceof DomainError) {
        await ctx.audit.denied(
          { ...base, tenantId: row.tenantId, actorId: row.principalId },
          base.action,
          row.principalId,
          error,
        );
      }
      throw error;
    });
}
