// Principal domain functions. Every query is scoped by the caller's tenant:
// a principal of another tenant does not exist as far as the caller can tell.
import type { Principal, PrincipalKind, PrincipalStatus } from "../../gen/prisma/client.js";
import type { Caller } from "../auth/caller.js";
import type { BrokerContext } from "../broker-context.js";
import type { Db } from "../db/database.js";
import { notFound } from "../errors/domain-error.js";
import { isId } from "../ids.js";
import { type Page, pageOf } from "../pagination.js";
import { ScopeSet } from "../policy/scope.js";
import { assertCovers } from "../policy/scope-checks.js";

export async function getPrincipal(db: Db, tenantId: string, principalId: string): Promise<Principal> {
  const principal = isId("principal", principalId)
    ? await db.principal.findFirst({ where: { id: principalId, tenantId } })
    : null;
  if (!principal) throw notFound("principal", "PRINCIPAL_NOT_FOUND");
  return principal;
}

/** A principal of the caller's tenant with the scopes it holds; not_found otherwise. */
export async function getPrincipalWithGrants(db: Db, tenantId: string, principalId: string) {
  const principal = await db.principal.findFirst({
    where: { id: principalId, tenantId },
    include: { grants: { select: { scope: true } } },
  });
  if (!principal) throw notFound("principal", "PRINCIPAL_NOT_FOUND");
  return principal;
}

/**
 * Acting as another principal (issuing it a key, setting its password) needs
 * every grant it holds: otherwise a member could take over the admin's powers.
 */
export function assertMayActAs(caller: Caller, principal: { id: string; grants: { scope: string }[] }, what: string) {
  if (principal.id === caller.principalId) return;
  assertCovers(caller, new ScopeSet(principal.grants.map((g) => g.scope)).scopes, what);
}

export async function listPrincipals(
  ctx: Pick<BrokerContext, "prisma">,
  tenantId: string,
  filter: { kind?: PrincipalKind; status?: PrincipalStatus },
  page: Page,
) {
  const rows = await ctx.prisma.principal.findMany({
    where: { tenantId, ...filter, ...(page.after ? { id: { gt: page.after } } : {}) },
    orderBy: { id: "asc" },
    take: page.size + 1,
  });
  return pageOf(rows, page, (p) => p.id);
}
