// People: principals of kind person, with the names they sign in with
// (username and/or email, each unique in the tenant, lower case). Tenant
// admins add them; each new person gets a one-time enrollment code
// (enrollments.ts) to choose their password with. Status changes follow the
// lifecycle every principal shares (principals/lifecycle.ts). Names arrive
// within their request rules (aegis/person/v1/person.proto).
import type { Prisma } from "../../gen/prisma/client.js";
import type { AuditBase } from "../core/audit.js";
import { type Caller, elevatedScope } from "../core/caller.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError, invalidArgument, notFound, permissionDenied } from "../core/errors/domain-error.js";
import { type Page, pageOf } from "../core/pagination.js";
import type { Db } from "../db/database.js";
import { credentialHolderFor } from "../policy/credential-issuance.js";
import { assertCovers, parseScopes } from "../policy/scope-checks.js";
import { changePrincipalStatus, lockPrincipal, type StatusChange } from "../principals/index.js";
import { isId, newId } from "../protocol/ids.js";
import { formatScope } from "../protocol/scope.js";
import { type IssuedEnrollment, issueEnrollment } from "./enrollments.js";

type PeopleContext = Pick<BrokerContext, "audit" | "clock" | "config" | "rootKey">;
type Tx = Prisma.TransactionClient | Db;

const personInclude = {
  person: true,
  grants: { select: { scope: true } },
  enrollments: {
    where: { usedAt: null, revokedAt: null },
    select: { expiresAt: true },
    orderBy: { createdAt: "desc" },
    take: 1,
  },
} as const satisfies Prisma.PrincipalInclude;

type PrincipalWithProfile = Prisma.PrincipalGetPayload<{ include: typeof personInclude }>;

/** A person as the API shows them. */
export interface PersonView extends PrincipalWithProfile {
  /** Whether they have set a password. */
  readonly enrolled: boolean;
  /** When their open enrollment code expires, if one is open. */
  readonly enrollmentExpiresAt: Date | undefined;
}

async function view(db: Tx, rows: PrincipalWithProfile[], now: Date): Promise<PersonView[]> {
  const accounts = await db.localAccount.findMany({
    where: { principalId: { in: rows.map((r) => r.id) } },
    select: { principalId: true },
  });
  const enrolled = new Set(accounts.map((a) => a.principalId));
  return rows.map((row) => {
    const open = row.enrollments[0];
    return {
      ...row,
      enrolled: enrolled.has(row.id),
      enrollmentExpiresAt: open && open.expiresAt > now ? open.expiresAt : undefined,
    };
  });
}

/** A person of the tenant, or not_found (also for other tenants' people and for agents). */
async function findPerson(db: Tx, tenantId: string, personId: string, now: Date): Promise<PersonView> {
  const row = isId("principal", personId)
    ? await db.principal.findFirst({ where: { id: personId, tenantId, kind: "person" }, include: personInclude })
    : null;
  if (!row) throw notFound("person", "PERSON_NOT_FOUND");
  return (await view(db, [row], now))[0] as PersonView;
}

/** Lower-cased names; empty means none. */
function names(input: { username?: string; email?: string }) {
  return {
    ...(input.username !== undefined ? { username: input.username.toLowerCase() || null } : {}),
    ...(input.email !== undefined ? { email: input.email.toLowerCase() || null } : {}),
  };
}

/** Refuses names another person of the tenant has (the unique keys catch races the same way). */
async function assertNamesFree(
  tx: Prisma.TransactionClient,
  tenantId: string,
  personId: string | undefined,
  wanted: { username?: string | null; email?: string | null },
) {
  const others = { tenantId, ...(personId ? { principalId: { not: personId } } : {}) };
  if (wanted.username && (await tx.person.findFirst({ where: { ...others, username: wanted.username } }))) {
    throw new DomainError("already_exists", "USERNAME_TAKEN", "this username is taken in the tenant");
  }
  if (wanted.email && (await tx.person.findFirst({ where: { ...others, email: wanted.email } }))) {
    throw new DomainError("already_exists", "EMAIL_TAKEN", "this email is taken in the tenant");
  }
}

const needsAName = () => invalidArgument([{ field: "username", description: "give a username, an email, or both" }]);

/**
 * Creates a person with their grants and enrollment code in the caller's
 * transaction, no questions asked: callers check who may (createPerson,
 * and CreateTenant for a tenant's first admin).
 */
export async function insertPerson(
  ctx: PeopleContext,
  tx: Prisma.TransactionClient,
  input: {
    tenantId: string;
    displayName: string;
    username: string;
    email: string;
    /** Canonical grant scopes. */
    scopes: readonly string[];
    grantedBy: string;
  },
): Promise<{ person: PersonView; enrollment: IssuedEnrollment }> {
  const wanted = names(input);
  if (!wanted.username && !wanted.email) throw needsAName();
  await assertNamesFree(tx, input.tenantId, undefined, wanted);
  const id = newId("principal");
  await tx.principal.create({
    data: { id, tenantId: input.tenantId, kind: "person", displayName: input.displayName.trim() },
  });
  await tx.person.create({ data: { principalId: id, tenantId: input.tenantId, ...wanted } });
  await tx.grant.createMany({
    data: input.scopes.map((scope) => ({
      id: newId("grant"),
      tenantId: input.tenantId,
      principalId: id,
      scope,
      grantedBy: input.grantedBy,
    })),
  });
  const enrollment = await issueEnrollment(ctx, tx, {
    tenantId: input.tenantId,
    principalId: id,
    createdBy: input.grantedBy,
  });
  return { person: await findPerson(tx, input.tenantId, id, ctx.clock.now()), enrollment };
}

/**
 * Adds a person to the caller's tenant. The scopes must be covered by the
 * credential presented, and since the enrollment code is a credential of
 * the new person, that same check is the credential rule
 * (policy/credential-issuance.ts) for them: a narrowed credential cannot
 * create someone who holds more than it does.
 */
export async function createPerson(
  ctx: PeopleContext,
  caller: Caller,
  auditBase: AuditBase,
  input: { displayName: string; username: string; email: string; scopes: string[] },
): Promise<{ person: PersonView; enrollment: IssuedEnrollment }> {
  const parsed = parseScopes("scopes", input.scopes, { wildcards: true });
  const scopes = parsed.map(formatScope);
  if (scopes.includes(elevatedScope)) {
    throw permissionDenied("SCOPE_ESCALATION", "the elevated grant cannot be given to a person");
  }
  assertCovers(caller, parsed, "adding a person with these scopes");
  return ctx.audit.transaction(
    (tx) => insertPerson(ctx, tx, { ...input, tenantId: caller.tenantId, scopes, grantedBy: caller.principalId }),
    ({ person, enrollment }) => ({
      ...auditBase,
      action: "person.create",
      target: person.id,
      outcome: "success",
      reason: `enrollment expires ${enrollment.expiresAt.toISOString()}`,
    }),
  );
}

export function getPerson(ctx: Pick<BrokerContext, "prisma" | "clock">, tenantId: string, personId: string) {
  return findPerson(ctx.prisma, tenantId, personId, ctx.clock.now());
}

export async function listPeople(
  ctx: Pick<BrokerContext, "prisma" | "clock">,
  tenantId: string,
  filter: { status?: PersonView["status"] },
  page: Page,
) {
  const rows = await ctx.prisma.principal.findMany({
    where: {
      tenantId,
      kind: "person",
      ...(filter.status ? { status: filter.status } : {}),
      ...(page.after ? { id: { gt: page.after } } : {}),
    },
    include: personInclude,
    orderBy: { id: "asc" },
    take: page.size + 1,
  });
  const { items, nextPageToken } = pageOf(rows, page, (p) => p.id);
  return { items: await view(ctx.prisma, items, ctx.clock.now()), nextPageToken };
}

export async function updatePerson(
  ctx: PeopleContext,
  caller: Caller,
  auditBase: AuditBase,
  input: { personId: string; displayName?: string; username?: string; email?: string },
): Promise<PersonView> {
  const wanted = names(input);
  return ctx.audit.transaction(
    async (tx) => {
      const now = ctx.clock.now();
      const current = await findPerson(tx, caller.tenantId, input.personId, now);
      if (current.status === "revoked") {
        throw new DomainError("failed_precondition", "PERSON_REMOVED", "a removed person cannot be changed");
      }
      const username = "username" in wanted ? wanted.username : (current.person?.username ?? null);
      const email = "email" in wanted ? wanted.email : (current.person?.email ?? null);
      if (!username && !email) throw needsAName();
      await assertNamesFree(tx, caller.tenantId, input.personId, wanted);
      if (input.displayName !== undefined) {
        await tx.principal.update({ where: { id: input.personId }, data: { displayName: input.displayName.trim() } });
      }
      await tx.person.upsert({
        where: { principalId: input.personId },
        create: { principalId: input.personId, tenantId: caller.tenantId, username, email },
        update: { username, email },
      });
      // The row's updatedAt moves with any change of the person.
      await tx.principal.update({ where: { id: input.personId }, data: { updatedAt: now } });
      return findPerson(tx, caller.tenantId, input.personId, now);
    },
    () => ({ ...auditBase, action: "person.update", target: input.personId, outcome: "success", reason: "" }),
  );
}

/** Person-side names of the shared lifecycle moves: a person's revoke is called removal. */
const verbs = { suspend: "suspend", reactivate: "reactivate", revoke: "remove" } as const;

/**
 * Suspends, reactivates or removes a person (principals/lifecycle.ts ends
 * what each move ends, and refuses a credential that does not cover every
 * grant of the person). Removal also frees their username and email.
 */
export async function changePersonStatus(
  ctx: Pick<BrokerContext, "audit" | "clock" | "config" | "feed">,
  caller: Caller,
  auditBase: AuditBase,
  personId: string,
  change: Exclude<StatusChange, "delete">,
): Promise<PersonView> {
  const person = await changePrincipalStatus(
    ctx,
    caller,
    auditBase,
    {
      principalId: personId,
      kind: "person",
      noun: "person",
      verb: verbs[change],
      notFound: () => notFound("person", "PERSON_NOT_FOUND"),
    },
    change,
    async (tx) => {
      if (change === "revoke") {
        await tx.person.updateMany({ where: { principalId: personId }, data: { username: null, email: null } });
      }
      return findPerson(tx, caller.tenantId, personId, ctx.clock.now());
    },
  );
  return person as PersonView;
}

/**
 * A new enrollment code for an active person, ending their earlier ones.
 * The code is a credential of that person: the credential presented must
 * cover every grant they hold (policy/credential-issuance.ts), checked with
 * the person's row held (`lockPrincipal`), so grants given at the same time
 * are either seen here or end the new code (enrollments.ts).
 */
export async function reissueEnrollment(
  ctx: PeopleContext,
  caller: Caller,
  auditBase: AuditBase,
  personId: string,
): Promise<{ person: PersonView; enrollment: IssuedEnrollment }> {
  return ctx.audit.transaction(
    async (tx) => {
      if (isId("principal", personId)) await lockPrincipal(tx, personId);
      const holder = await credentialHolderFor(tx, caller, personId, "issuing an enrollment code");
      const now = ctx.clock.now();
      const person = await findPerson(tx, caller.tenantId, holder.id, now);
      if (person.status !== "active") {
        throw new DomainError(
          "failed_precondition",
          "PERSON_NOT_ACTIVE",
          `only an active person can enroll; this one is ${person.status === "revoked" ? "removed" : person.status}`,
        );
      }
      const enrollment = await issueEnrollment(ctx, tx, {
        tenantId: caller.tenantId,
        principalId: person.id,
        createdBy: caller.principalId,
      });
      return { person: await findPerson(tx, caller.tenantId, person.id, now), enrollment };
    },
    ({ enrollment }) => ({
      ...auditBase,
      action: "person.enrollment.issue",
      target: personId,
      outcome: "success",
      reason: `enrollment expires ${enrollment.expiresAt.toISOString()}`,
    }),
  );
}
