// Managing API keys of principals: create, list (metadata only), rotate with
// a grace period, revoke. Issuing or rotating a key follows the rules of
// policy/credential-issuance.ts: the credential presented must cover every
// grant of the key's principal, the caller's own included, and the key may
// not outlive it. Revoking another principal's key needs the same right.
// Label, lifetime and grace period arrive within their request rules
// (aegis/apikey/v1/apikey.proto).
import type { ApiKey } from "../../gen/prisma/client.js";
import { apiKeyHashPurpose, issueApiKey } from "../auth/api-keys.js";
import type { AuditBase } from "../core/audit.js";
import type { Caller } from "../core/caller.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError, invalidArgument, notFound, permissionDenied } from "../core/errors/domain-error.js";
import { type Page, pageOf } from "../core/pagination.js";
import { RevocationFeed } from "../core/revocation-feed.js";
import { assertNotOutliving, credentialHolderFor } from "../policy/credential-issuance.js";
import { getPrincipal } from "../principals/index.js";

/** Tells every instance to drop what it cached about a key (its expiry or revocation changed). */
function keyChanged(ctx: Pick<BrokerContext, "clock">, keyId: string) {
  return { kind: "api_key" as const, subject: keyId, expiresAt: new Date(ctx.clock.now().getTime() + 120_000) };
}

async function keyHolder(ctx: Pick<BrokerContext, "prisma">, caller: Caller, principalId: string, what: string) {
  const principal = await credentialHolderFor(ctx.prisma, caller, principalId, what);
  if (principal.status === "revoked") throw notFound("principal", "PRINCIPAL_NOT_FOUND");
  return principal;
}

export async function createApiKey(
  ctx: Pick<BrokerContext, "prisma" | "audit" | "clock" | "rootKey">,
  caller: Caller,
  auditBase: AuditBase,
  input: { principalId: string; label: string; ttlSeconds: number | undefined },
): Promise<{ key: ApiKey; secret: string }> {
  const principal = await keyHolder(ctx, caller, input.principalId, "an API key");
  const expiresAt = input.ttlSeconds ? new Date(ctx.clock.now().getTime() + input.ttlSeconds * 1000) : undefined;
  assertNotOutliving(caller, expiresAt, "an API key");
  return ctx.audit.transaction(
    async (tx) => {
      const issued = await issueApiKey(tx, ctx.rootKey.deriveKey(apiKeyHashPurpose), {
        tenantId: caller.tenantId,
        principalId: principal.id,
        label: input.label,
        ...(expiresAt ? { expiresAt } : {}),
      });
      return { key: await tx.apiKey.findUniqueOrThrow({ where: { id: issued.id } }), secret: issued.secret };
    },
    ({ key }) => ({
      ...auditBase,
      action: "apikey.create",
      target: `${principal.id} ${key.id}`,
      outcome: "success",
      reason: "",
    }),
  );
}

/**
 * A principal's keys, newest first, one page at a time. The page
 * token is the last key's creation time and id, so pages stay put while keys
 * are added.
 */
export async function listApiKeys(
  ctx: Pick<BrokerContext, "prisma">,
  caller: Caller,
  principalId: string,
  page: Page,
): Promise<{ items: ApiKey[]; nextPageToken: string }> {
  await getPrincipal(ctx.prisma, caller.tenantId, principalId);
  const [time = "", id = ""] = page.after?.split(" ") ?? [];
  const after = page.after ? new Date(time) : undefined;
  if (after && Number.isNaN(after.getTime())) {
    throw invalidArgument([{ field: "page_token", description: "is not a token returned by this method" }]);
  }
  const rows = await ctx.prisma.apiKey.findMany({
    where: {
      principalId,
      ...(after ? { OR: [{ createdAt: { lt: after } }, { createdAt: after, id: { lt: id } }] } : {}),
    },
    orderBy: [{ createdAt: "desc" }, { id: "desc" }],
    take: page.size + 1,
  });
  return pageOf(rows, page, (key) => `${key.createdAt.toISOString()} ${key.id}`);
}

async function findKey(ctx: Pick<BrokerContext, "prisma">, caller: Caller, keyId: string) {
  const key = /^[a-z2-7]{16}$/.test(keyId)
    ? await ctx.prisma.apiKey.findFirst({ where: { id: keyId, tenantId: caller.tenantId } })
    : null;
  if (!key) throw notFound("API key", "API_KEY_NOT_FOUND");
  return key;
}

/**
 * What a rotation issues: exactly what it replaces, every field that says
 * what a key may do kept (kind, scopes, the resource server whose scopes they
 * are, expiry). A user API token made for a resource server that came back
 * without its server would read that server's scope names as broker scopes.
 */
function successorOf(old: ApiKey): Parameters<typeof issueApiKey>[2] {
  return {
    tenantId: old.tenantId,
    principalId: old.principalId,
    label: old.label,
    ...(old.expiresAt ? { expiresAt: old.expiresAt } : {}),
    ...(old.kind === "user_token" ? { scopes: (old.scopes ?? "").split(" ").filter(Boolean) } : {}),
    ...(old.kind === "user_token" && old.resourceServerId ? { resourceServerId: old.resourceServerId } : {}),
  };
}

export async function rotateApiKey(
  ctx: Pick<BrokerContext, "prisma" | "audit" | "clock" | "rootKey" | "config" | "feed">,
  caller: Caller,
  auditBase: AuditBase,
  input: { keyId: string; graceSeconds: number | undefined },
): Promise<{ key: ApiKey; secret: string; previous: ApiKey }> {
  // Rotating issues a credential: a key outside the tenant is refused as the
  // credential-issuance rule refuses a principal outside it, not reported missing.
  const old = await findKey(ctx, caller, input.keyId).catch((error: unknown) => {
    throw error instanceof DomainError && error.code === "not_found"
      ? permissionDenied("PRINCIPAL_NOT_ACCESSIBLE", "no credential can be issued for this key")
      : error;
  });
  await keyHolder(ctx, caller, old.principalId, "rotating this key");
  const now = ctx.clock.now();
  if (old.revokedAt || (old.expiresAt && old.expiresAt <= now)) throw notFound("API key", "API_KEY_NOT_FOUND");
  assertNotOutliving(caller, old.expiresAt ?? undefined, "rotating this key");
  const grace = (input.graceSeconds ?? ctx.config.apiKeyRotationGraceSeconds) * 1000;
  const graceEnd = new Date(now.getTime() + grace);
  const changed = keyChanged(ctx, old.id);
  const result = await ctx.audit.transaction(
    async (tx) => {
      await RevocationFeed.publish(tx, changed);
      const issued = await issueApiKey(tx, ctx.rootKey.deriveKey(apiKeyHashPurpose), successorOf(old));
      const previous = await tx.apiKey.update({
        where: { id: old.id },
        data: { expiresAt: old.expiresAt && old.expiresAt < graceEnd ? old.expiresAt : graceEnd },
      });
      return { key: await tx.apiKey.findUniqueOrThrow({ where: { id: issued.id } }), secret: issued.secret, previous };
    },
    ({ key }) => ({
      ...auditBase,
      action: "apikey.rotate",
      target: `${old.id} -> ${key.id}`,
      outcome: "success",
      reason: "",
    }),
  );
  ctx.feed.apply(changed);
  return result;
}

export async function revokeApiKey(
  ctx: Pick<BrokerContext, "prisma" | "audit" | "clock" | "feed">,
  caller: Caller,
  auditBase: AuditBase,
  keyId: string,
): Promise<ApiKey> {
  const key = await findKey(ctx, caller, keyId);
  if (key.principalId !== caller.principalId)
    await credentialHolderFor(ctx.prisma, caller, key.principalId, "revoking this key");
  const changed = keyChanged(ctx, key.id);
  const revoked = await ctx.audit.transaction(
    async (tx) => {
      if (key.revokedAt) return key;
      await RevocationFeed.publish(tx, changed);
      return tx.apiKey.update({ where: { id: key.id }, data: { revokedAt: ctx.clock.now() } });
    },
    () => ({ ...auditBase, action: "apikey.revoke", target: key.id, outcome: "success", reason: "" }),
  );
  ctx.feed.apply(changed);
  return revoked;
}
