// Local sign-in of people: setting a password directly (SetLocalPassword)
// and finding the accounts a sign-in name stands for. A sign-in name is a
// person's username or email, unique in their tenant; the sign-in form may
// name the tenant, and without it the name is looked up across tenants (the
// password then tells the accounts apart; see the device pages).

import { hashPassword } from "../auth/passwords.js";
import type { AuditBase } from "../core/audit.js";
import type { Caller } from "../core/caller.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError } from "../core/errors/domain-error.js";
import type { Db } from "../db/database.js";
import { credentialHolderFor } from "../policy/credential-issuance.js";

/** One account a sign-in name may stand for. */
export interface SignInAccount {
  readonly principalId: string;
  readonly tenantId: string;
  readonly status: "active" | "suspended" | "revoked";
  /** Undefined when the person has not enrolled (no password). */
  readonly passwordHash: string | undefined;
}

/** The most accounts one tenant-less name is checked against (one per tenant using the name). */
export const maxSignInCandidates = 5;

/**
 * The accounts `name` (a username or email, any case) stands for: in the
 * tenant named `tenantName`, or in any tenant when it is empty.
 */
export async function signInAccounts(db: Db, input: { tenantName: string; name: string }): Promise<SignInAccount[]> {
  const name = input.name.toLowerCase();
  if (!name) return [];
  let tenantId: string | undefined;
  if (input.tenantName) {
    const tenant = await db.tenant.findUnique({
      where: { name: input.tenantName.toLowerCase() },
      select: { id: true },
    });
    if (!tenant) return [];
    tenantId = tenant.id;
  }
  const people = await db.person.findMany({
    where: { ...(tenantId ? { tenantId } : {}), OR: [{ username: name }, { email: name }] },
    include: { principal: { select: { status: true } } },
    orderBy: { principalId: "asc" },
    take: maxSignInCandidates,
  });
  const accounts = await db.localAccount.findMany({
    where: { principalId: { in: people.map((p) => p.principalId) } },
  });
  const hashes = new Map(accounts.map((a) => [a.principalId, a.passwordHash]));
  return people.map((p) => ({
    principalId: p.principalId,
    tenantId: p.tenantId,
    status: p.principal.status,
    passwordHash: hashes.get(p.principalId),
  }));
}

/**
 * Sets a person's username and local password. A password is a full
 * credential of its person: the one rule for issuing credentials applies.
 */
export async function setLocalPassword(
  ctx: Pick<BrokerContext, "prisma" | "audit">,
  caller: Caller,
  auditBase: AuditBase,
  input: { principalId: string; username: string; password: string },
): Promise<void> {
  // The username's form and the password's length are request rules (device.proto).
  const username = input.username.toLowerCase();
  const person = await credentialHolderFor(ctx.prisma, caller, input.principalId, "setting this password");
  if (person.kind !== "person") {
    throw new DomainError("failed_precondition", "NOT_A_PERSON", "only people sign in with a password");
  }
  const passwordHash = await hashPassword(input.password);
  await ctx.audit.transaction(
    async (tx) => {
      const taken = await tx.person.findFirst({
        where: { tenantId: person.tenantId, username, principalId: { not: person.id } },
      });
      if (taken) throw new DomainError("already_exists", "USERNAME_TAKEN", "this username is taken in the tenant");
      await tx.person.upsert({
        where: { principalId: person.id },
        create: { principalId: person.id, tenantId: person.tenantId, username },
        update: { username },
      });
      await tx.localAccount.upsert({
        where: { principalId: person.id },
        create: { principalId: person.id, passwordHash },
        update: { passwordHash },
      });
    },
    () => ({ ...auditBase, action: "account.password.set", target: person.id, outcome: "success", reason: username }),
  );
}
