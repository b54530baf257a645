// The OAuth device authorization grant (RFC 8628) and its refresh tokens.
// Plain domain functions: the RPCs, the HTTP endpoints and the verification
// page all call these.
//
// - The device code is 256 random bits, stored as a hash, exchanged once.
// - The user code is 8 letters from an alphabet without vowels or look-alikes,
//   shown as XXXX-XXXX, accepted in any case with or without the dash.
//   Wrong entries are rate-limited per address and globally, and audited.
// - `interval` is enforced per code: polling early is `slow_down` and adds
//   5 s to that code's interval (§3.5).
// - Refresh tokens rotate on every use; a used one presented again revokes
//   its whole family, and the access tokens issued with it (reuse detection).
import { createHash, randomInt } from "node:crypto";
import type { DeviceAuthorization, OAuthClient, Prisma } from "../../gen/prisma/client.js";
import { hashCredential } from "../auth/api-keys.js";
import { checkDpop } from "../auth/dpop-check.js";
import type { AuditBase } from "../core/audit.js";
import type { Caller } from "../core/caller.js";
import { DomainError, invalidArgument, notFound, permissionDenied } from "../core/errors/domain-error.js";
import type { RateLimiter } from "../core/rate-limit.js";
import { RevocationFeed } from "../core/revocation-feed.js";
import { credentialHolderFor } from "../policy/credential-issuance.js";
import { assertCovers, parseScopes } from "../policy/scope-checks.js";
import { generateCredential, parseCredential } from "../protocol/credential-format.js";
import { newId } from "../protocol/ids.js";
import { base62Alphabet, randomText } from "../protocol/random-text.js";
import { formatScope, type Scope, ScopeSet } from "../protocol/scope.js";
import { type CallSite, issueAccessToken, type MintedToken, type TokenDeps } from "../tokens/index.js";

export const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ";
export const refreshTokenHashPurpose = "aegis/refresh-token-hash/v1";

export interface DeviceDeps extends TokenDeps {
  readonly rootKeyHash: Buffer;
  readonly deviceConfig: {
    readonly codeSeconds: number;
    readonly intervalSeconds: number;
    readonly refreshTokenSeconds: number;
  };
  /** Wrong user codes, per client address, per signed-in person, and over all addresses. */
  readonly codeFailures: RateLimiter;
  readonly codeFailuresPerPerson: RateLimiter;
  readonly codeFailuresGlobal: RateLimiter;
}

export interface TokenSet {
  readonly accessToken: string;
  readonly tokenType: MintedToken["tokenType"];
  readonly expiresIn: number;
  readonly scope: string;
  readonly refreshToken: string;
}

/** RFC 8628 outcomes as typed errors; the HTTP endpoint maps the reasons to its error codes. */
const outcome = {
  pending: () =>
    new DomainError("failed_precondition", "AUTHORIZATION_PENDING", "the person has not decided yet; poll again"),
  slowDown: (interval: number) =>
    new DomainError("resource_exhausted", "SLOW_DOWN", `polling too fast; wait ${interval} s between polls`),
  expired: () => new DomainError("failed_precondition", "EXPIRED_TOKEN", "the device code expired; start again"),
  denied: () => new DomainError("permission_denied", "ACCESS_DENIED", "the person denied the request"),
  invalidGrant: (detail: string) =>
    new DomainError("invalid_argument", "INVALID_GRANT", "the code or token is invalid, used or expired", { detail }),
  invalidClient: (detail: string) =>
    new DomainError("unauthenticated", "INVALID_CLIENT", "unknown or disabled client", { detail }),
};

/** `abcd-efgh`, `ABCDEFGH`, ` abcd efgh `: the canonical 8 letters, or undefined when it cannot be a user code. */
export function normalizeUserCode(input: string): string | undefined {
  const code = input.toUpperCase().replace(/[\s-]/g, "");
  if (code.length !== 8) return undefined;
  for (const c of code) if (!userCodeAlphabet.includes(c)) return undefined;
  return code;
}

export function displayUserCode(code: string): string {
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}

function newUserCode(): string {
  let code = "";
  for (let i = 0; i < 8; i++) code += userCodeAlphabet[randomInt(userCodeAlphabet.length)];
  return code;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("base64url");

async function activeClient(
  db: Prisma.TransactionClient | TokenDeps["prisma"],
  clientId: string,
): Promise<OAuthClient> {
  const client = clientId.length <= 40 ? await db.oAuthClient.findUnique({ where: { id: clientId } }) : null;
  if (!client || client.disabled) throw outcome.invalidClient(`client ${clientId.slice(0, 40)} unknown or disabled`);
  return client;
}

export async function beginDeviceAuthorization(
  deps: DeviceDeps,
  site: CallSite,
  input: { clientId: string; scopes: readonly string[]; audience: string },
) {
  const client = await activeClient(deps.prisma, input.clientId);
  const scopes = parseScopes("scope", input.scopes, { wildcards: true });
  const allowed = new ScopeSet(client.allowedScopes.split(" ").filter(Boolean));
  const refused = scopes.filter((s) => !allowed.covers(s)).map(formatScope);
  if (refused.length > 0) {
    throw new DomainError(
      "permission_denied",
      "INVALID_SCOPE",
      `scopes not allowed to this client: ${refused.join(" ")}`,
    );
  }
  const audience = input.audience || deps.config.publicUrl;
  if (audience !== deps.config.publicUrl && !client.allowedAudiences.split(" ").includes(audience)) {
    throw new DomainError(
      "invalid_argument",
      "INVALID_TARGET",
      `audience ${audience.slice(0, 100)} not allowed to this client`,
    );
  }
  const deviceCode = randomText(base62Alphabet, 43);
  const { codeSeconds, intervalSeconds } = deps.deviceConfig;
  const expiresAt = new Date(deps.clock.now().getTime() + codeSeconds * 1000);
  // A clash of user codes among live ones is ~1 in 10^8 per pair: try again, twice.
  for (let attempt = 0; ; attempt++) {
    const userCode = newUserCode();
    try {
      const row = await deps.audit.transaction(
        (tx) =>
          tx.deviceAuthorization.create({
            data: {
              id: newId("deviceAuthorization"),
              tenantId: client.tenantId,
              clientId: client.id,
              deviceCodeHash: sha256(deviceCode),
              userCode,
              scopes: scopes.map(formatScope).join(" "),
              audience,
              intervalSeconds,
              expiresAt,
              requesterAddress: site.clientAddress.slice(0, 100),
              requesterAgent: (site.headers.get("user-agent") ?? "").slice(0, 200),
            },
          }),
        (r) => ({
          requestId: site.requestId,
          tenantId: client.tenantId,
          actorId: null,
          client: site.client,
          action: "device.begin",
          target: r.id,
          outcome: "success",
          reason: `client ${client.id} scopes ${r.scopes}`.slice(0, 500),
        }),
      );
      const verificationUri = `${deps.config.publicUrl}/device`;
      return {
        deviceCode,
        userCode: displayUserCode(row.userCode),
        verificationUri,
        verificationUriComplete: `${verificationUri}?user_code=${displayUserCode(row.userCode)}`,
        expiresIn: codeSeconds,
        interval: intervalSeconds,
      };
    } catch (error) {
      if (attempt >= 2 || !String((error as Error).message).includes("user_code")) throw error;
    }
  }
}

/** Refusals of the token exchanges are audited here, so the RPC and the HTTP endpoint record them alike. */
async function audited<T>(deps: DeviceDeps, site: CallSite, action: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    // "Pending" is the normal answer while the person decides, not a refusal.
    if (error instanceof DomainError && error.reason !== "AUTHORIZATION_PENDING") {
      await deps.audit.denied(
        { requestId: site.requestId, tenantId: null, actorId: null, client: site.client },
        action,
        "",
        error,
      );
    }
    throw error;
  }
}

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
  if (claimed.count !== 1) throw outcome.invalidGrant(`device code of ${row.id} already exchanged`);
  return issueTokenSet(deps, site, {
    principalId: row.principalId ?? "",
    clientId: client.id,
    scopes: (row.approvedScopes ?? "").split(" ").filter(Boolean),
    audience: row.audience,
    familyId: newId("refreshToken"),
    ...(jkt ? { jkt } : {}),
  });
}

/** An access token and a refresh token for a person, within what they still hold. */
async function issueTokenSet(
  deps: DeviceDeps,
  site: CallSite,
  input: {
    principalId: string;
    clientId: string;
    scopes: string[];
    audience: string;
    familyId: string;
    jkt?: string;
    /** A rotation keeps the family's expiry: re-issuing never extends a credential. */
    refreshExpiresAt?: Date;
  },
): Promise<TokenSet> {
  const person = await deps.prisma.principal.findUnique({
    where: { id: input.principalId },
    include: { grants: { select: { scope: true } } },
  });
  if (person?.status !== "active") throw outcome.denied();
  const held = new ScopeSet(person.grants.map((g) => g.scope));
  const scope = new ScopeSet(input.scopes).scopes
    .filter((s) => held.covers(s))
    .map(formatScope)
    .join(" ");
  const minted = await issueAccessToken(deps, site, {
    subject: { principalId: person.id, tenantId: person.tenantId, kind: person.kind },
    clientId: input.clientId,
    audience: input.audience,
    scope,
    lifetimeSeconds: deps.config.tokenLifetime.defaultSeconds,
    ...(input.jkt ? { jkt: input.jkt } : {}),
  });
  const refresh = generateCredential("refreshToken");
  await deps.prisma.refreshToken.create({
    data: {
      id: newId("refreshToken"),
      familyId: input.familyId,
      tokenHash: hashCredential(deps.rootKeyHash, refresh.text).toString("hex"),
      tenantId: person.tenantId,
      principalId: person.id,
      clientId: input.clientId,
      scopes: scope,
      audience: input.audience,
      jkt: input.jkt ?? null,
      accessJti: minted.jti,
      expiresAt:
        input.refreshExpiresAt ?? new Date(deps.clock.now().getTime() + deps.deviceConfig.refreshTokenSeconds * 1000),
    },
  });
  return { ...minted, refreshToken: refresh.text };
}

export function refreshAccessToken(
  deps: DeviceDeps,
  site: CallSite,
  input: { clientId: string; refreshToken: string },
): Promise<TokenSet> {
  return audited(deps, site, "device.refresh", () => refresh(deps, site, input));
}

async function refresh(
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
async function revokeFamily(deps: DeviceDeps, site: CallSite, familyId: string, reason: string): Promise<void> {
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

/** Forgets what can no longer be used: device codes a day past expiry, expired sessions and refresh tokens. */
export async function pruneDeviceFlow(prisma: TokenDeps["prisma"], now: Date): Promise<void> {
  const dayAgo = new Date(now.getTime() - 86_400_000);
  await prisma.deviceAuthorization.deleteMany({ where: { expiresAt: { lt: dayAgo } } });
  await prisma.webSession.deleteMany({ where: { expiresAt: { lt: now } } });
  await prisma.refreshToken.deleteMany({ where: { expiresAt: { lt: dayAgo } } });
}
