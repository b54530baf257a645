// Exchanging an approved device code for tokens (RFC 8628 §3.4-3.5):
// `interval` is enforced per code (polling early is slow_down and adds 5 s),
// and a code is exchanged exactly once however many polls race. Suspending,
// revoking or deleting the person who approved it denies a login not yet
// exchanged (principals/lifecycle.ts), so it is refused with access_denied,
// also after the person is reactivated: the approval does not outlive it.
import { checkDpop } from "../auth/dpop-check.js";
import { newId } from "../protocol/ids.js";
import type { CallSite } from "../tokens/index.js";
import {
  activeClient,
  audited,
  type DeviceDeps,
  issueTokenSet,
  outcome,
  sha256,
  type TokenSet,
} from "./device-grant.js";

export function exchangeDeviceCode(
  deps: DeviceDeps,
  site: CallSite,
  input: { clientId: string; deviceCode: string },
): Promise<TokenSet> {
  return audited(deps, site, "device.exchange", () => exchange(deps, site, input));
}

async function exchange(
  deps: DeviceDeps,
  site: CallSite,
  input: { clientId: string; deviceCode: string },
): Promise<TokenSet> {
  const client = await activeClient(deps.prisma, input.clientId);
  const row =
    input.deviceCode.length <= 100
      ? await deps.prisma.deviceAuthorization.findUnique({ where: { deviceCodeHash: sha256(input.deviceCode) } })
      : null;
  if (!row || row.clientId !== client.id) throw outcome.invalidGrant("unknown device code");
  const now = deps.clock.now();
  if (row.status === "consumed") throw outcome.invalidGrant(`device code of ${row.id} already exchanged`);
  if (row.expiresAt <= now) throw outcome.expired();
  if (row.lastPolledAt && now.getTime() - row.lastPolledAt.getTime() < row.intervalSeconds * 1000) {
    const interval = row.intervalSeconds + 5;
    await deps.prisma.deviceAuthorization.update({
      where: { id: row.id },
      data: { intervalSeconds: interval, lastPolledAt: now },
    });
    throw outcome.slowDown(interval);
  }
  await deps.prisma.deviceAuthorization.update({ where: { id: row.id }, data: { lastPolledAt: now } });
  if (row.status === "pending") throw outcome.pending();
  if (row.status === "denied") throw outcome.denied();
  const proof = site.headers.get("dpop");
  const jkt = proof ? await checkDpop(deps, proof, site) : undefined;
  // Exactly once, whatever the number of concurrent polls.
  const claimed = await deps.prisma.deviceAuthorization.updateMany({
    where: { id: row.id, status: "approved" },
    data: { status: "consumed" },
  });
  if (claimed.count !== 1) {
    // Exchanged by a racing poll, or denied since it was read (its person was suspended).
    const current = await deps.prisma.deviceAuthorization.findUnique({ where: { id: row.id } });
    if (current?.status === "denied") throw outcome.denied();
    throw outcome.invalidGrant(`device code of ${row.id} already exchanged`);
  }
  return issueTokenSet(deps, site, {
    principalId: row.principalId ?? "",
    clientId: client.id,
    scopes: (row.approvedScopes ?? "").split(" ").filter(Boolean),
    audience: row.audience,
    familyId: newId("refreshToken"),
    ...(jkt ? { jkt } : {}),
  });
}
