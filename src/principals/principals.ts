// Principal domain functions. Every query is scoped by the caller's tenant:
// a principal of another tenant does not exist as far as the caller can tell.
import type { Principal, PrincipalKind, PrincipalStatus, Prisma } from "../../gen/prisma/client.js";
import type { BrokerContext } from "../core/context.js";
import { notFound } from "../core/errors/domain-error.js";
import { type Page, pageOf } from "../core/pagination.js";
import type { Db } from "../db/database.js";
import { isId } from "../protocol/ids.js";

export async function getPrincipal(db: Db, tenantId: string, principalId: string): Promise<Principal> {
  const principal = isId("principal", principalId)
    ? await db.principal.findFirst({ where: { id: principalId, tenantId } })
    : null;
  if (!principal) throw notFound("principal", "PRINCIPAL_NOT_FOUND");
  return principal;
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

/**
 * Holds the principal's row until the transaction ends, so the changes that
 * must see one another happen one after the other for one principal: grants
 * given (which end its open enrollment codes), an enrollment code issued
 * (after checking the grants it covers), a status change. Under PostgreSQL's
 * READ COMMITTED each could otherwise miss the other's uncommitted write and
 * leave a code that covers less than its person holds. FOR NO KEY UPDATE
 * leaves writes that only reference the row (a new grant, a lease) free.
 */
export async function lockPrincipal(tx: Prisma.TransactionClient, principalId: string): Promise<void> {
  await tx.$queryRaw`SELECT id FROM principal WHERE id = ${principalId} FOR NO KEY UPDATE`;
}
