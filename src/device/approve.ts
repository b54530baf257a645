// A person's decision on a device login: the user code looked up (wrong
// entries rate-limited per address, per person and globally, and audited),
// then approved for all or some of the requested scopes, or denied.
import type { DeviceAuthorization } from "../../gen/prisma/client.js";
import type { AuditBase } from "../core/audit.js";
import type { Caller } from "../core/caller.js";
import { invalidArgument, notFound, permissionDenied } from "../core/errors/domain-error.js";
import { credentialHolderFor } from "../policy/credential-issuance.js";
import { assertCovers, parseScopes } from "../policy/scope-checks.js";
import { formatScope, type Scope, ScopeSet } from "../protocol/scope.js";
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
    [deps.codeFailures, who.address, "wrong user codes from this address"],
    [deps.codeFailuresPerPerson, who.principalId, "wrong user codes from you"],
    [deps.codeFailuresGlobal, "*", "wrong user codes"],
  ] as const;
  // Over any limit, codes are not even looked up.
  for (const [limiter, key, what] of limits) if (limiter.exceeded(key)) limiter.hit(key, what);
  const code = normalizeUserCode(input);
  const row = code ? await deps.prisma.deviceAuthorization.findUnique({ where: { userCode: code } }) : null;
  if (!row || row.tenantId !== tenantId || row.status !== "pending" || row.expiresAt <= deps.clock.now()) {
    for (const [limiter, key, what] of limits) limiter.hit(key, what);
    throw notFound("user code", "INVALID_USER_CODE");
  }
  return row;
}

export async function decideDeviceAuthorization(
  deps: Pick<
    DeviceDeps,
    "prisma" | "clock" | "audit" | "codeFailures" | "codeFailuresPerPerson" | "codeFailuresGlobal"
  >,
  caller: Caller,
  auditBase: AuditBase,
  address: string,
  input: { userCode: string; approve: boolean; scopes: readonly string[] },
): Promise<string[]> {
  if (caller.kind !== "person") throw permissionDenied("PERSONS_ONLY", "only people approve device logins");
  const row = await findPendingByUserCode(
    deps,
    { address, principalId: caller.principalId },
    caller.tenantId,
    input.userCode,
  );
  const requested = row.scopes.split(" ").filter(Boolean);
  let approved: readonly Scope[] = [];
  if (input.approve) {
    approved = input.scopes.length
      ? parseScopes("scopes", input.scopes, { wildcards: true })
      : new ScopeSet(requested).scopes;
    const extra = approved.map(formatScope).filter((s) => !requested.includes(s));
    if (extra.length) throw invalidArgument([{ field: "scopes", description: `not requested: ${extra.join(" ")}` }]);
    assertCovers(caller, approved, "approving these scopes");
    // Approving issues the device a refresh token of the person's: a credential.
    await credentialHolderFor(deps.prisma, caller, caller.principalId, "approving a device login");
  }
  const scopes = approved.map(formatScope);
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
