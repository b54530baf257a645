// A person's decision on a device login: the user code looked up (wrong
// entries rate-limited per address, per person and globally, and audited),
// then approved for all or some of the requested scopes, or denied.
// Approving issues a refresh token family, so it follows the issuance rules
// (policy/credential-issuance.ts): the credential presented covers the
// person's grants and outlives the family.
import type { DeviceAuthorization } from "../../gen/prisma/client.js";
import type { AuditBase } from "../core/audit.js";
import type { Caller } from "../core/caller.js";
import { clientNetwork } from "../core/client-network.js";
import { invalidArgument, notFound, permissionDenied } from "../core/errors/domain-error.js";
import { assertNotOutliving, credentialHolderFor } from "../policy/credential-issuance.js";
import { assertCovers, parseScopes } from "../policy/scope-checks.js";
import { formatScope } from "../protocol/scope.js";
import { assertApplicationScopesHeld, audienceOf } from "../resource-servers/index.js";
import { type DeviceDeps, normalizeUserCode } from "./device-grant.js";

/**
 * A pending authorization by user code, counting wrong entries against the
 * address, the signed-in person and the broker. The person's limit is below
 * the global one and checked first, so one person (from however many
 * addresses) stops counting towards the global limit long before using it up.
 */
export async function findPendingByUserCode(
  deps: Pick<DeviceDeps, "prisma" | "clock" | "codeFailures" | "codeFailuresPerPerson" | "codeFailuresGlobal">,
  who: { readonly address: string; readonly principalId: string },
  tenantId: string,
  input: string,
): Promise<DeviceAuthorization> {
  const limits = [
    [deps.codeFailures, clientNetwork(who.address), "wrong user codes from this address"],
    [deps.codeFailuresPerPerson, who.principalId, "wrong user codes from you"],
    [deps.codeFailuresGlobal, "*", "wrong user codes"],
  ] as const;
  // Over any limit, codes are not even looked up.
  for (const [limiter, key, what] of limits) await limiter.refuseIfOver(key, what);
  const code = normalizeUserCode(input);
  const row = code ? await deps.prisma.deviceAuthorization.findUnique({ where: { userCode: code } }) : null;
  if (!row || row.tenantId !== tenantId || row.status !== "pending" || row.expiresAt <= deps.clock.now()) {
    for (const [limiter, key, what] of limits) await limiter.hit(key, what);
    throw notFound("user code", "INVALID_USER_CODE");
  }
  return row;
}

/** The scopes approved, canonical; each must be carried by the approver's credential. */
async function approvedScopes(
  deps: Pick<DeviceDeps, "prisma" | "config">,
  caller: Caller,
  row: DeviceAuthorization,
  texts: readonly string[],
): Promise<string[]> {
  const target = await audienceOf(deps, caller.tenantId, row.audience);
  if (target.kind === "resource") {
    const scopes = [...new Set(texts)];
    await assertApplicationScopesHeld(deps.prisma, caller, target.server, scopes, "approving these scopes");
    return scopes;
  }
  const approved = parseScopes("scopes", texts, { wildcards: true });
  assertCovers(caller, approved, "approving these scopes");
  return approved.map(formatScope);
}

export async function decideDeviceAuthorization(
  deps: Pick<
    DeviceDeps,
    | "prisma"
    | "clock"
    | "audit"
    | "config"
    | "deviceConfig"
    | "codeFailures"
    | "codeFailuresPerPerson"
    | "codeFailuresGlobal"
  >,
  caller: Caller,
  auditBase: AuditBase,
  address: string,
  input: {
    userCode: string;
    approve: boolean;
    scopes: readonly string[];
    /**
     * The scopes are what a person left ticked on the approval page, so none
     * means none. Through the RPC an empty list means all those requested.
     */
    asTicked?: boolean;
  },
): Promise<string[]> {
  if (caller.kind !== "person") throw permissionDenied("PERSONS_ONLY", "only people approve device logins");
  const row = await findPendingByUserCode(
    deps,
    { address, principalId: caller.principalId },
    caller.tenantId,
    input.userCode,
  );
  const requested = row.scopes.split(" ").filter(Boolean);
  let scopes: string[] = [];
  if (input.approve) {
    scopes = await approvedScopes(deps, caller, row, input.scopes.length || input.asTicked ? input.scopes : requested);
    const extra = scopes.filter((s) => !requested.includes(s));
    if (extra.length) throw invalidArgument([{ field: "scopes", description: `not requested: ${extra.join(" ")}` }]);
    // Approving issues the device a refresh token of the person's: a credential.
    await credentialHolderFor(deps.prisma, caller, caller.principalId, "approving a device login");
    // Its family lives refreshTokenSeconds from the exchange, which comes before the code expires.
    const familyEnd = new Date(row.expiresAt.getTime() + deps.deviceConfig.refreshTokenSeconds * 1000);
    assertNotOutliving(caller, familyEnd, "approving a device login (its refresh tokens)");
  }
  await deps.audit.transaction(
    async (tx) => {
      const changed = await tx.deviceAuthorization.updateMany({
        where: { id: row.id, status: "pending" },
        data: input.approve
          ? { status: "approved", approvedScopes: scopes.join(" "), principalId: caller.principalId }
          : { status: "denied", principalId: caller.principalId },
      });
      if (changed.count !== 1) throw notFound("user code", "INVALID_USER_CODE");
    },
    () => ({
      ...auditBase,
      action: input.approve ? "device.approve" : "device.deny",
      target: row.id,
      outcome: "success",
      reason: input.approve
        ? `client ${row.clientId} scopes ${scopes.join(" ")}`.slice(0, 500)
        : `client ${row.clientId}`,
    }),
  );
  return scopes;
}
