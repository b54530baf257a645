// What every step of the device authorization grant (RFC 8628) shares: its
// dependencies, its outcomes as typed errors (the HTTP endpoint maps their
// reasons to RFC 8628 error codes), user codes, the refusal audit of the
// token exchanges, issuing a token set, and forgetting what expired.
//
// - The device code is 256 random bits, stored as a hash, exchanged once.
// - The user code is 8 letters from an alphabet without vowels or look-alikes,
//   shown as XXXX-XXXX, accepted in any case with or without the dash.

import { createHash, randomInt } from "node:crypto";
import type { OAuthClient, Prisma } from "../../gen/prisma/client.js";
import { hashCredential } from "../auth/api-keys.js";
import type { SignInBackoff } from "../auth/sign-in-backoff.js";
import { DomainError } from "../core/errors/domain-error.js";
import { keyPurposes } from "../core/key-purposes.js";
import type { RateLimiter } from "../core/rate-limit.js";
import { generateCredential } from "../protocol/credential-format.js";
import { newId } from "../protocol/ids.js";
import { formatScope, ScopeSet } from "../protocol/scope.js";
import { assertBindingAllowed, audienceOf, heldApplicationScopes } from "../resource-servers/index.js";
import { type CallSite, issueAccessToken, type MintedToken, type TokenDeps } from "../tokens/index.js";

export const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ";
export const refreshTokenHashPurpose = keyPurposes.refreshTokenHash;

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
  /** Per-account slowing of wrong passwords on the sign-in pages (shared on PostgreSQL, like the limits). */
  readonly signInBackoff: SignInBackoff;
}

export interface TokenSet {
  readonly accessToken: string;
  readonly tokenType: MintedToken["tokenType"];
  readonly expiresIn: number;
  readonly scope: string;
  readonly refreshToken: string;
}

/** RFC 8628 outcomes as typed errors; the HTTP endpoint maps the reasons to its error codes. */
export const outcome = {
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
  unauthorizedClient: (detail: string) =>
    new DomainError("permission_denied", "UNAUTHORIZED_CLIENT", "this client may not use this grant", { detail }),
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

export function newUserCode(): string {
  let code = "";
  for (let i = 0; i < 8; i++) code += userCodeAlphabet[randomInt(userCodeAlphabet.length)];
  return code;
}

export const sha256 = (text: string) => createHash("sha256").update(text).digest("base64url");

export async function activeClient(
  db: Prisma.TransactionClient | TokenDeps["prisma"],
  clientId: string,
): Promise<OAuthClient> {
  const client = clientId.length <= 40 ? await db.oAuthClient.findUnique({ where: { id: clientId } }) : null;
  if (!client || client.disabled) throw outcome.invalidClient(`client ${clientId.slice(0, 40)} unknown or disabled`);
  return client;
}

/** Refusals of the token exchanges are audited here, so the RPC and the HTTP endpoint record them alike. */
export async function audited<T>(deps: DeviceDeps, site: CallSite, action: string, work: () => Promise<T>): Promise<T> {
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

/** An access token and a refresh token for a person, within what they still hold. */
export async function issueTokenSet(
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
  const target = await audienceOf(deps, person.tenantId, input.audience);
  let scope: string;
  let lifetimeSeconds = deps.config.tokenLifetime.defaultSeconds;
  if (target.kind === "resource") {
    // Of what was approved, what the person still holds and the server still offers.
    const { server } = target;
    assertBindingAllowed(server, input.jkt);
    const held = await heldApplicationScopes(
      deps.prisma,
      { principalId: person.id, applicationScopes: "all" },
      server.id,
    );
    const offered = new Set(server.scopes.filter((s) => !s.deprecated).map((s) => s.name));
    scope = input.scopes.filter((s) => held.has(s) && offered.has(s)).join(" ");
    lifetimeSeconds = server.defaultLifetimeSeconds;
  } else {
    const held = new ScopeSet(person.grants.map((g) => g.scope));
    scope = new ScopeSet(input.scopes).scopes
      .filter((s) => held.covers(s))
      .map(formatScope)
      .join(" ");
  }
  const minted = await issueAccessToken(deps, site, {
    subject: { principalId: person.id, tenantId: person.tenantId, kind: person.kind },
    clientId: input.clientId,
    audience: input.audience,
    scope,
    lifetimeSeconds,
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

/**
 * Forgets what can no longer be used: device and authorization codes a day
 * past expiry (kept that long so a late reuse of a code still revokes its
 * tokens), expired sessions and refresh tokens.
 */
export async function pruneDeviceFlow(prisma: TokenDeps["prisma"], now: Date): Promise<void> {
  const dayAgo = new Date(now.getTime() - 86_400_000);
  await prisma.deviceAuthorization.deleteMany({ where: { expiresAt: { lt: dayAgo } } });
  await prisma.authorizationCode.deleteMany({ where: { expiresAt: { lt: dayAgo } } });
  await prisma.webSession.deleteMany({ where: { expiresAt: { lt: now } } });
  await prisma.refreshToken.deleteMany({ where: { expiresAt: { lt: dayAgo } } });
}
