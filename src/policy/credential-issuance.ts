// The one rule for issuing credentials. Creating or re-issuing any
// credential for a principal P – an API key, the rotation of a key or user
// API token, a user API token, a signing or encryption key, a password, the
// refresh token of an approved device login – needs the credential presented
// on this call to cover every grant P holds.
//
// There is deliberately no exception for P being the caller's own principal:
// a narrowed credential (a user API token, a narrowed broker token, a device
// login approved for a few scopes) carries less than its principal holds,
// and an exception for oneself let each of them mint itself a full, permanent
// credential. Checking the credential, not the principal, closes that door
// for every credential kind, present and future.
//
// A resource server's scopes held by P are covered by the admin right over
// that server (which could give them anyway) or by the credential carrying
// them itself; a resource server's own principal is covered only by the
// admin right over it.
//
// The second rule is about time: a credential whose issuer gave it an expiry
// (an API key or user API token with `expiresAt`, Caller.credentialExpiresAt)
// issues nothing that outlives it. A long-lived credential asked for by one
// about to expire is refused, naming the presented credential's expiry
// (`assertNotOutliving`); an access token is instead shortened to the time
// left, as OAuth servers shorten lifetimes and say so in `expires_in`
// (`lifetimeWithin`, RFC 6749 §5.1). Broker access tokens, web sessions and
// client assertions carry no such expiry: they are short-lived sessions by
// design, and a person signed in with one may still make a key that lasts.
// A broker token minted by a credential that expires is the exception: it is
// marked (`aegis_bounded`) and bound by its own `exp`, so minting one is no
// step around this rule.
import type { Caller } from "../core/caller.js";
import { permissionDenied } from "../core/errors/domain-error.js";
import type { Db } from "../db/database.js";
import { isId } from "../protocol/ids.js";
import { parseScope, resourceServerAdminScope } from "../protocol/scope.js";
import { administers } from "./scope-checks.js";

/** A principal with the grants it holds, as the rule needs it. */
interface CredentialHolder {
  readonly id: string;
  readonly tenantId: string;
  readonly grants: readonly { readonly scope: string }[];
  readonly resourceGrants: readonly { readonly resourceServerId: string; readonly scope: string }[];
  /** Set when P is a resource server's own principal. */
  readonly resourceServer: { readonly id: string } | null;
}

/** The grants of `holder` that `caller`'s presented credential does not cover (exact text or by matching). */
async function uncoveredGrants(db: Db, caller: Caller, holder: CredentialHolder): Promise<string[]> {
  const broker = holder.grants
    .map((grant) => grant.scope)
    .filter((text) => {
      if (caller.scopes.has(text)) return false;
      try {
        return !caller.scopes.covers(parseScope(text, { wildcards: true }));
      } catch {
        return true; // a grant that no longer parses is covered only by holding it exactly
      }
    });
  const server = holder.resourceServer;
  if (server && !administers(caller, server.id)) broker.push(resourceServerAdminScope(server.id));
  const needed = holder.resourceGrants.filter((g) => !administers(caller, g.resourceServerId));
  if (needed.length === 0) return broker;
  const carried = await carriedApplicationScopes(db, caller);
  return [
    ...broker,
    ...needed
      .filter((g) => !carried.has(`${g.resourceServerId} ${g.scope}`))
      .map((g) => `${g.resourceServerId}:${g.scope}`),
  ];
}

/** `<server id> <scope>` for every application scope the presented credential carries. */
async function carriedApplicationScopes(db: Db, caller: Caller): Promise<Set<string>> {
  const carried = caller.applicationScopes;
  if (carried === undefined) return new Set();
  const grants = await db.resourceGrant.findMany({
    where: {
      principalId: caller.principalId,
      ...(carried === "all" ? {} : { resourceServerId: carried.resourceServerId, scope: { in: [...carried.scopes] } }),
    },
    select: { resourceServerId: true, scope: true },
  });
  return new Set(grants.map((g) => `${g.resourceServerId} ${g.scope}`));
}

/** Throws permission_denied unless the caller's presented credential covers every grant of `holder`. */
async function assertMayIssueCredentialFor(db: Db, caller: Caller, holder: CredentialHolder, what: string) {
  const missing = await uncoveredGrants(db, caller, holder);
  if (missing.length === 0) return;
  throw permissionDenied(
    "SCOPE_ESCALATION",
    `${what} needs a credential that covers every grant of ${holder.id === caller.principalId ? "your principal" : "that principal"}; the one presented does not`,
    `${caller.credentialType} ${caller.credentialId} acting for ${holder.id} lacks ${missing.join(" ")}`.slice(0, 480),
  );
}

/**
 * The principal a credential is issued for, with its grants, when it is in
 * the caller's tenant. Any other id – another tenant's principal or none at
 * all – is refused the same way, so the answer tells nothing of other tenants
 * (AIP-193: permission is checked before existence).
 */
async function findCredentialHolder(db: Db, caller: Caller, principalId: string) {
  const principal = isId("principal", principalId)
    ? await db.principal.findFirst({
        where: { id: principalId, tenantId: caller.tenantId },
        include: {
          grants: { select: { scope: true } },
          resourceGrants: { select: { resourceServerId: true, scope: true } },
          resourceServer: { select: { id: true } },
        },
      })
    : null;
  if (!principal) {
    throw permissionDenied(
      "PRINCIPAL_NOT_ACCESSIBLE",
      "no credential can be issued for this principal",
      `principal ${principalId.slice(0, 40)} is not in tenant ${caller.tenantId}`,
    );
  }
  return principal;
}

/** Loads the holder and applies the rule: the one call every credential-issuing path makes. */
export async function credentialHolderFor(db: Db, caller: Caller, principalId: string, what: string) {
  const holder = await findCredentialHolder(db, caller, principalId);
  await assertMayIssueCredentialFor(db, caller, holder, what);
  return holder;
}

/** The refusal of the second rule: `what` would end after the presented credential does. */
function outlivesPresented(caller: Caller, asked: Date | undefined, what: string) {
  const presentedExpiry = caller.credentialExpiresAt?.toISOString() ?? "";
  return permissionDenied(
    "CREDENTIAL_OUTLIVES_PRESENTED",
    `${what} would outlive the credential presented, which expires at ${presentedExpiry}: ask for an expiry no later than that, or present a credential that does not expire`,
    `${caller.credentialType} ${caller.credentialId} expires at ${presentedExpiry}; asked ${asked?.toISOString() ?? "no expiry"}`,
  );
}

/**
 * Throws permission_denied when a credential ending at `expiresAt`
 * (undefined: never) would outlive the presented credential's expiry.
 */
export function assertNotOutliving(caller: Caller, expiresAt: Date | undefined, what: string): void {
  const limit = caller.credentialExpiresAt;
  if (limit === undefined) return;
  if (expiresAt === undefined || expiresAt.getTime() > limit.getTime()) {
    throw outlivesPresented(caller, expiresAt, what);
  }
}

/**
 * An access token's lifetime in whole seconds from `now`, shortened so that
 * it ends no later than the presented credential; refused when less than a
 * second of it is left.
 */
export function lifetimeWithin(caller: Caller, now: Date, lifetimeSeconds: number): number {
  const limit = caller.credentialExpiresAt;
  if (limit === undefined) return lifetimeSeconds;
  // Whole seconds from the whole second of `now`, as `iat` and `exp` are.
  const left = Math.floor(limit.getTime() / 1000) - Math.floor(now.getTime() / 1000);
  if (left < 1) throw outlivesPresented(caller, new Date(now.getTime() + lifetimeSeconds * 1000), "this token");
  return Math.min(lifetimeSeconds, left);
}
