// Credentials: sealed secrets at a target. The broker validates and stores
// the owner's JWE as given and never holds a key that opens it. Every
// operation needs a grant whose selector covers the credential's target.
import type { Credential, Prisma } from "../../gen/prisma/client.js";
import type { AuditBase } from "../core/audit.js";
import type { Caller } from "../core/caller.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError, invalidArgument, notFound } from "../core/errors/domain-error.js";
import { type Page, pageOf } from "../core/pagination.js";
import { endActiveLeases } from "../leases/index.js";
import { assertTargetAllowed } from "../policy/scope-checks.js";
import { coveredTargets, parseTarget, targetOf } from "../policy/targets.js";
import { isId, newId } from "../protocol/ids.js";
import type { Selector } from "../protocol/scope.js";
import { parseSealedJwe, SealedJweError, type SealedRecipient } from "../protocol/sealed-jwe.js";

type Ctx = Pick<BrokerContext, "prisma" | "audit" | "clock">;
type Db = Prisma.TransactionClient | BrokerContext["prisma"];

function parseSealed(text: string): SealedRecipient[] {
  try {
    return parseSealedJwe(text).recipients;
  } catch (error) {
    if (!(error instanceof SealedJweError)) throw error;
    throw invalidArgument([{ field: "sealed_jwe", description: error.message }]);
  }
}

const curves: Record<string, string> = { X25519: "X25519", "P-256": "P-256" };

/** Every recipient is a registered, unrevoked encryption key of the tenant, of the curve used for it. */
async function checkRecipients(db: Db, tenantId: string, recipients: SealedRecipient[]): Promise<void> {
  const keys = await db.agentKey.findMany({
    where: { id: { in: recipients.map((r) => r.kid) }, tenantId, use: "encryption", revokedAt: null },
    include: { principal: { select: { status: true } } },
  });
  for (const recipient of recipients) {
    const key = keys.find((k) => k.id === recipient.kid);
    if (!key || key.principal.status === "revoked") {
      throw invalidArgument([
        {
          field: "sealed_jwe",
          description: `recipient ${recipient.kid.slice(0, 40)} is not a registered encryption key of this tenant`,
        },
      ]);
    }
    if (curves[String((key.jwk as { crv?: string }).crv)] !== recipient.crv) {
      throw invalidArgument([
        {
          field: "sealed_jwe",
          description: `recipient ${key.id} is sealed with a ${recipient.crv} key; the key is not`,
        },
      ]);
    }
  }
}

/** A credential of the caller's tenant that `action` grants cover; not_found for other tenants' ids. */
async function findCredential(db: Db, caller: Caller, credentialId: string, action: string) {
  const credential = isId("credential", credentialId)
    ? await db.credential.findFirst({ where: { id: credentialId, tenantId: caller.tenantId } })
    : null;
  if (!credential) throw notFound("credential", "CREDENTIAL_NOT_FOUND");
  assertTargetAllowed(caller, { action, selector: targetOf(credential) });
  return credential;
}

export async function registerCredential(
  ctx: Ctx,
  caller: Caller,
  auditBase: AuditBase,
  input: { target?: Partial<Selector> | undefined; displayName: string; sealedJwe: string },
): Promise<Credential> {
  const target = parseTarget("target", input.target);
  assertTargetAllowed(caller, { action: "credential.create", selector: target });
  const recipients = parseSealed(input.sealedJwe);
  return ctx.audit.transaction(
    async (tx) => {
      await checkRecipients(tx, caller.tenantId, recipients);
      if (await tx.credential.findFirst({ where: { tenantId: caller.tenantId, ...target } })) {
        throw new DomainError(
          "already_exists",
          "CREDENTIAL_EXISTS",
          "a credential is already registered at this target",
        );
      }
      return tx.credential.create({
        data: {
          id: newId("credential"),
          tenantId: caller.tenantId,
          ...target,
          displayName: input.displayName,
          ownerId: caller.principalId,
          sealed: input.sealedJwe,
          recipientKids: recipients.map((r) => r.kid).join(" "),
        },
      });
    },
    (c) => ({
      ...auditBase,
      action: "credential.create",
      target: c.id,
      outcome: "success",
      reason: `v1 recipients ${c.recipientKids}`,
    }),
  );
}

export function getCredential(ctx: Pick<Ctx, "prisma">, caller: Caller, credentialId: string) {
  return findCredential(ctx.prisma, caller, credentialId, "credential.read");
}

export async function listCredentials(
  ctx: Pick<Ctx, "prisma">,
  caller: Caller,
  filter: { provider: string },
  page: Page,
) {
  const rows = await ctx.prisma.credential.findMany({
    where: {
      tenantId: caller.tenantId,
      ...coveredTargets(caller.scopes, "credential.read"),
      ...(filter.provider ? { provider: filter.provider } : {}),
      ...(page.after ? { id: { gt: page.after } } : {}),
    },
    orderBy: { id: "asc" },
    take: page.size + 1,
  });
  return pageOf(rows, page, (c) => c.id);
}

export async function updateCredential(
  ctx: Ctx,
  caller: Caller,
  auditBase: AuditBase,
  input: { credentialId: string; sealedJwe: string; expectedVersion: number },
): Promise<Credential> {
  const recipients = parseSealed(input.sealedJwe);
  return ctx.audit.transaction(
    async (tx) => {
      const current = await findCredential(tx, caller, input.credentialId, "credential.update");
      if (input.expectedVersion && input.expectedVersion !== current.version) {
        throw new DomainError(
          "failed_precondition",
          "VERSION_MISMATCH",
          `the credential is at version ${current.version}, not ${input.expectedVersion}`,
        );
      }
      await checkRecipients(tx, caller.tenantId, recipients);
      const updated = await tx.credential.updateMany({
        where: { id: current.id, version: current.version },
        data: {
          sealed: input.sealedJwe,
          recipientKids: recipients.map((r) => r.kid).join(" "),
          version: { increment: 1 },
        },
      });
      if (updated.count !== 1) {
        throw new DomainError("aborted", "CONCURRENT_UPDATE", "the credential changed meanwhile; retry");
      }
      return tx.credential.findUniqueOrThrow({ where: { id: current.id } });
    },
    (c) => ({
      ...auditBase,
      action: "credential.update",
      target: c.id,
      outcome: "success",
      reason: `v${c.version} recipients ${c.recipientKids}`,
    }),
  );
}

export async function deleteCredential(
  ctx: Ctx,
  caller: Caller,
  auditBase: AuditBase,
  credentialId: string,
): Promise<void> {
  await ctx.audit.transaction(
    async (tx) => {
      const credential = await findCredential(tx, caller, credentialId, "credential.delete");
      const now = ctx.clock.now();
      await endActiveLeases(tx, { credentialId: credential.id }, "credential deleted", now);
      await tx.credential.delete({ where: { id: credential.id } });
    },
    () => ({ ...auditBase, action: "credential.delete", target: credentialId, outcome: "success", reason: "" }),
  );
}
