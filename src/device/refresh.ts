// Refresh tokens of device logins: they rotate on every use (keeping their
// family's expiry); a used one presented again revokes its whole family and
// the access tokens issued with it (reuse detection); a public client
// revokes its own (RFC 7009 §2.1).
import { hashCredential } from "../auth/api-keys.js";
import { checkDpop } from "../auth/dpop-check.js";
import { RevocationFeed } from "../core/revocation-feed.js";
import { parseCredential } from "../protocol/credential-format.js";
import type { CallSite } from "../tokens/index.js";
import { activeClient, audited, type DeviceDeps, issueTokenSet, outcome, type TokenSet } from "./device-grant.js";

export function refreshAccessToken(
  deps: DeviceDeps,
  site: CallSite,
  input: { clientId: string; refreshToken: string },
): Promise<TokenSet> {
  return audited(deps, site, "device.refresh", () => refresh(deps, site, input));
}

export async function refresh(
  deps: DeviceDeps,
  site: CallSite,
  input: { clientId: string; refreshToken: string },
): Promise<TokenSet> {
  const parsed = parseCredential(input.refreshToken);
  if (parsed?.kind !== "refreshToken") throw outcome.invalidGrant("not a refresh token");
  const row = await deps.prisma.refreshToken.findUnique({
    where: { tokenHash: hashCredential(deps.rootKeyHash, parsed.text).toString("hex") },
  });
  if (!row || row.clientId !== input.clientId) throw outcome.invalidGrant("unknown refresh token");
  await activeClient(deps.prisma, input.clientId);
  const now = deps.clock.now();
  if (row.revokedAt) throw outcome.invalidGrant(`refresh token family ${row.familyId} is revoked`);
  if (row.usedAt) {
    await revokeFamily(deps, site, row.familyId, "reuse of a rotated refresh token");
    throw outcome.invalidGrant(`refresh token ${row.id} reused: family ${row.familyId} revoked`);
  }
  if (row.expiresAt <= now) throw outcome.invalidGrant("refresh token expired");
  let jkt: string | undefined;
  if (row.jkt) {
    const proof = site.headers.get("dpop");
    if (!proof) throw outcome.invalidGrant("this refresh token is DPoP-bound: send a proof");
    jkt = await checkDpop(deps, proof, site);
    if (jkt !== row.jkt) throw outcome.invalidGrant("DPoP proof key does not match the refresh token's");
  }
  const used = await deps.prisma.refreshToken.updateMany({
    where: { id: row.id, usedAt: null },
    data: { usedAt: now },
  });
  if (used.count !== 1) {
    await revokeFamily(deps, site, row.familyId, "concurrent reuse of a refresh token");
    throw outcome.invalidGrant(`refresh token ${row.id} reused: family ${row.familyId} revoked`);
  }
  return issueTokenSet(deps, site, {
    principalId: row.principalId,
    clientId: row.clientId,
    scopes: row.scopes.split(" ").filter(Boolean),
    audience: row.audience,
    familyId: row.familyId,
    refreshExpiresAt: row.expiresAt,
    ...(jkt ? { jkt } : {}),
  });
}

/** Revokes every refresh token of a family and the access tokens issued with them, on every instance. */
export async function revokeFamily(deps: DeviceDeps, site: CallSite, familyId: string, reason: string): Promise<void> {
  const now = deps.clock.now();
  const tokenExpiry = new Date(now.getTime() + (deps.config.tokenLifetime.maxSeconds + 60) * 1000);
  const entries = await deps.audit.transaction(
    async (tx) => {
      const members = await tx.refreshToken.findMany({ where: { familyId } });
      await tx.refreshToken.updateMany({ where: { familyId, revokedAt: null }, data: { revokedAt: now } });
      const revoked = members.map((m) => ({ kind: "token" as const, subject: m.accessJti, expiresAt: tokenExpiry }));
      for (const entry of revoked) await RevocationFeed.publish(tx, entry);
      return { revoked, tenantId: members[0]?.tenantId ?? null, principalId: members[0]?.principalId ?? null };
    },
    (r) => ({
      requestId: site.requestId,
      tenantId: r.tenantId,
      actorId: r.principalId,
      client: site.client,
      action: "device.refresh.revoke_family",
      target: familyId,
      outcome: "success",
      reason,
    }),
  );
  for (const entry of entries.revoked) deps.feed.apply(entry);
}

/** Finds the refresh token's family for RFC 7009 revocation by a public client; silent when unknown. */
export async function revokeRefreshToken(
  deps: DeviceDeps,
  site: CallSite,
  clientId: string,
  token: string,
): Promise<boolean> {
  const parsed = parseCredential(token);
  if (parsed?.kind !== "refreshToken") return false;
  const row = await deps.prisma.refreshToken.findUnique({
    where: { tokenHash: hashCredential(deps.rootKeyHash, parsed.text).toString("hex") },
  });
  if (row && row.clientId === clientId) await revokeFamily(deps, site, row.familyId, "revoked by the client");
  return true;
}
