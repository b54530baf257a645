import type { PrismaClient } from "../../gen/prisma/client.js";
import type { Authenticator } from "../auth/authenticate.js";
import { checkDpop } from "../auth/dpop-check.js";
import type { DpopNonces } from "../auth/dpop-nonce.js";
import type { FailedAuthentications } from "../auth/failed-authentications.js";
import type { ReplayGuard } from "../auth/replay-guard.js";
import type { AuditBase, AuditTrail } from "../core/audit.js";
import type { CallSite } from "../core/call.js";
import { type Caller, isElevated } from "../core/caller.js";
import type { Clock } from "../core/clock.js";
import type { Config } from "../core/config.js";
import {
  DomainError,
  type FieldViolation,
  invalidArgument,
  invalidDpopProof,
  permissionDenied,
  unauthenticated,
} from "../core/errors/domain-error.js";
import type { RateLimiter } from "../core/rate-limit.js";
import { latestTokenExpiry, RevocationFeed } from "../core/revocation-feed.js";
import { assertCovers, parseScopes, scopeSetOf } from "../policy/scope-checks.js";
import {
  type AccessTokenClaims,
  looksLikeJwt,
  signAccessToken,
  verifyAccessTokenJwt,
} from "../protocol/access-token.js";
import { type JtiFacts, newJti, parseJti } from "../protocol/jti.js";
import { formatScope, type Scope } from "../protocol/scope.js";
import type { KeyRing } from "./signing-keys.js";

export interface TokenDeps {
  readonly prisma: PrismaClient;
  readonly audit: AuditTrail;
  readonly clock: Clock;
  readonly keyRing: KeyRing;
  readonly feed: RevocationFeed;
  readonly replay: ReplayGuard;
  readonly nonces: DpopNonces | undefined;
  readonly mintLimiter: RateLimiter;
  /** Failed authentications per address, shared with every other way in. */
  readonly authFailures: FailedAuthentications;
  readonly revokeLimiter: RateLimiter;
  readonly config: Pick<Config, "publicUrl" | "tokenLifetime">;
  readonly verified: VerifiedTokens;
}

/**
 * Tokens whose signature and claims were already verified under the current
 * key ring. A token is immutable, so re-verifying its signature on every use
 * only burns CPU; expiry, audience and revocation are still checked on every
 * hit, and a key ring reload (rotation, retirement) voids every entry.
 */
export class VerifiedTokens {
  readonly #entries = new Map<string, { claims: AccessTokenClaims; version: number }>();
  constructor(private readonly max = 10_000) {}

  get(token: string, version: number): AccessTokenClaims | undefined {
    const entry = this.#entries.get(token);
    return entry?.version === version ? entry.claims : undefined;
  }

  set(token: string, version: number, claims: AccessTokenClaims): void {
    if (this.#entries.size >= this.max) this.#entries.delete(this.#entries.keys().next().value as string);
    this.#entries.set(token, { claims, version });
  }
}

const clockToleranceSeconds = 5;

export type { CallSite };

export interface MintRequest {
  readonly audience: string;
  readonly scopes: readonly string[];
  readonly lifetimeSeconds: number;
  readonly clientAssertion: string;
}

export interface MintedToken {
  readonly accessToken: string;
  readonly tokenType: "DPoP" | "Bearer";
  readonly expiresIn: number;
  readonly scope: string;
  readonly jti: string;
}

function validateMint(request: MintRequest, maxLifetime: number): Scope[] {
  const violations: FieldViolation[] = [];
  if (!request.audience || request.audience.length > 256 || /\s/.test(request.audience)) {
    violations.push({ field: "audience", description: "must be a non-empty identifier of at most 256 characters" });
  }
  if (request.lifetimeSeconds < 0 || request.lifetimeSeconds > maxLifetime) {
    violations.push({ field: "lifetime_seconds", description: `must be between 0 and ${maxLifetime}` });
  }
  if (request.clientAssertion.length > 8192) violations.push({ field: "client_assertion", description: "too long" });
  if (violations.length > 0) throw invalidArgument(violations);
  return parseScopes("scopes", request.scopes, { wildcards: true });
}

/** What an issued token says: who it is for, for which client, where, with what. */
export interface TokenGrant {
  readonly subject: Pick<Caller, "principalId" | "tenantId" | "kind">;
  /** `client_id`: the agent itself, or the OAuth client a person logged in with. */
  readonly clientId: string;
  readonly audience: string;
  /** Canonical scopes, space-separated. */
  readonly scope: string;
  readonly lifetimeSeconds: number;
  /** Binds the token to this DPoP key (`cnf.jkt`). */
  readonly jkt?: string;
}

/**
 * Signs a token for an already decided grant and records it: the response
 * waits for the audit batch, so no token leaves unaudited.
 */
export async function issueAccessToken(deps: TokenDeps, site: CallSite, grant: TokenGrant): Promise<MintedToken> {
  const iat = Math.floor(deps.clock.now().getTime() / 1000);
  const exp = iat + grant.lifetimeSeconds;
  const claims: AccessTokenClaims = {
    iss: deps.config.publicUrl,
    sub: grant.subject.principalId,
    aud: grant.audience,
    exp,
    iat,
    jti: newJti({ principalId: grant.subject.principalId, exp }),
    client_id: grant.clientId,
    tenant_id: grant.subject.tenantId,
    scope: grant.scope,
    principal_kind: grant.subject.kind,
    ...(grant.jkt ? { cnf: { jkt: grant.jkt } } : {}),
  };
  const accessToken = signAccessToken(deps.keyRing.snapshot.signer, claims);
  await deps.audit.append({
    requestId: site.requestId,
    tenantId: grant.subject.tenantId,
    actorId: grant.subject.principalId,
    client: site.client,
    action: "token.mint",
    target: claims.jti,
    outcome: "success",
    reason: grant.clientId === grant.subject.principalId ? "" : `client ${grant.clientId}`,
  });
  return {
    accessToken,
    tokenType: grant.jkt ? "DPoP" : "Bearer",
    expiresIn: grant.lifetimeSeconds,
    scope: grant.scope,
    jti: claims.jti,
  };
}

/**
 * Mints a token for `caller`, an OAuth client the pipeline authenticated
 * (API key, user API token or assertion; `caller.dpopJkt` when the call
 * carried a DPoP proof, to which the token is then bound).
 */
export async function mintToken(
  deps: TokenDeps,
  site: CallSite,
  caller: Caller,
  request: MintRequest,
): Promise<MintedToken> {
  const { defaultSeconds, maxSeconds } = deps.config.tokenLifetime;
  const scopes = validateMint(request, maxSeconds);
  try {
    deps.mintLimiter.hit(`address:${site.clientAddress}`, "token requests from this address");
    deps.mintLimiter.hit(`principal:${caller.principalId}`, "token requests for this client");
    assertCovers(caller, scopes, "this token", "SCOPE_NOT_GRANTED");
    return await issueAccessToken(deps, site, {
      subject: caller,
      clientId: caller.principalId,
      audience: request.audience,
      scope: scopes.map(formatScope).join(" "),
      lifetimeSeconds: request.lifetimeSeconds || defaultSeconds,
      ...(caller.dpopJkt ? { jkt: caller.dpopJkt } : {}),
    });
  } catch (error) {
    if (error instanceof DomainError && error.code !== "invalid_argument") {
      const base = {
        requestId: site.requestId,
        tenantId: caller.tenantId,
        actorId: caller.principalId,
        client: site.client,
      };
      await deps.audit.denied(base, "token.mint", request.audience, error);
    }
    throw error;
  }
}

/** Verifies a broker token offline; throws `unauthenticated` with the precise reason as detail. */
export async function verifyToken(
  deps: Pick<TokenDeps, "keyRing" | "feed" | "clock" | "config" | "verified">,
  token: string,
  audience: string | undefined,
): Promise<AccessTokenClaims> {
  const now = deps.clock.now();
  const version = deps.keyRing.version;
  let claims = deps.verified.get(token, version);
  if (claims) {
    if ((claims.exp + clockToleranceSeconds) * 1000 <= now.getTime()) throw unauthenticated("access token expired");
    if (audience !== undefined && claims.aud !== audience) throw unauthenticated("access token audience mismatch");
  } else {
    try {
      claims = await verifyAccessTokenJwt(token, deps.keyRing.lookup, {
        issuer: deps.config.publicUrl,
        ...(audience === undefined ? {} : { audience }),
        now,
        clockToleranceSeconds,
        maxLifetimeSeconds: deps.config.tokenLifetime.maxSeconds,
      });
    } catch (error) {
      throw unauthenticated(`access token invalid: ${(error as Error).message}`);
    }
    deps.verified.set(token, version, claims);
  }
  const revoked = deps.feed.revocationOf(claims);
  if (revoked) throw unauthenticated(revoked);
  return claims;
}

/** RFC 7662: the claims of an active token the caller may see, else undefined. */
export async function introspectToken(deps: TokenDeps, caller: Caller, token: string) {
  if (token.length > 8192) return undefined;
  try {
    const claims = await verifyToken(deps, token, undefined);
    // A resource server sees its own tenant's tokens only.
    if (claims.tenant_id !== caller.tenantId && !isElevated(caller)) return undefined;
    return claims;
  } catch {
    return undefined;
  }
}

/** What a revocation request names: the token's id, owner and expiry, when it names one of ours. */
async function revocationSubject(
  deps: TokenDeps,
  request: { jti: string; token: string },
): Promise<(JtiFacts & { jti: string; tenantId?: string; clientId?: string }) | undefined> {
  if (request.jti) {
    if (request.jti.length > 128) throw invalidArgument([{ field: "jti", description: "too long" }]);
    const facts = parseJti(request.jti);
    return facts && { ...facts, jti: request.jti };
  }
  if (!request.token) throw invalidArgument([{ field: "jti", description: "give a jti or a token" }]);
  try {
    const claims = await verifyAccessTokenJwt(request.token, deps.keyRing.lookup, {
      issuer: deps.config.publicUrl,
      now: deps.clock.now(),
      clockToleranceSeconds: 365 * 86_400, // an expired token may still be revoked (no-op)
    });
    return {
      jti: claims.jti,
      principalId: claims.sub,
      exp: claims.exp,
      tenantId: claims.tenant_id,
      clientId: claims.client_id,
    };
  } catch {
    return undefined;
  }
}

/** RFC 7009: revoke by jti or token; unknown, expired or foreign tokens are a silent no-op. */
export async function revokeToken(
  deps: TokenDeps,
  caller: Caller,
  auditBase: AuditBase,
  request: { jti: string; token: string },
): Promise<void> {
  // Counted before anything is looked up: made-up jtis are what a flood would send.
  deps.revokeLimiter.hit(caller.principalId, "token revocations by this caller");
  const token = await revocationSubject(deps, request);
  if (!token) return;
  const expiresAt = new Date(token.exp * 1000);
  const now = deps.clock.now();
  // A jti's expiry is the caller's word: one past any token's life names no
  // token, and publishing it would keep a feed entry (on every instance) that long.
  if (expiresAt <= now || expiresAt > latestTokenExpiry(now, deps.config.tokenLifetime.maxSeconds)) return;
  const owned = token.principalId === caller.principalId;
  const tenantId = owned
    ? caller.tenantId
    : (token.tenantId ??
      (await deps.prisma.principal.findUnique({ where: { id: token.principalId }, select: { tenantId: true } }))
        ?.tenantId);
  if (tenantId !== caller.tenantId && !isElevated(caller)) return; // looks like an unknown token
  if (!owned && !caller.scopes.has("token.revoke") && !isElevated(caller))
    throw permissionDenied("NOT_TOKEN_OWNER", "only the token's owner or a holder of token.revoke may revoke it");
  await publishRevocation(deps, auditBase, token.jti, expiresAt, "");
}

/** Writes a token's revocation to the feed in one audited transaction and applies it here at once. */
async function publishRevocation(
  deps: TokenDeps,
  auditBase: AuditBase,
  jti: string,
  expiresAt: Date,
  reason: string,
): Promise<void> {
  const entry = { kind: "token" as const, subject: jti, expiresAt };
  await deps.audit.transaction(
    (tx) => RevocationFeed.publish(tx, entry),
    () => ({ ...auditBase, action: "token.revoke", target: jti, outcome: "success", reason }),
  );
  deps.feed.apply(entry);
}

/**
 * RFC 7009 §2.1: a public client (a CLI, a local MCP tool: no secret to
 * authenticate with) revokes an access token issued to it by naming itself.
 * Only registered public clients may, and only tokens whose `client_id` is
 * theirs; an unknown or expired token is a silent no-op, as for everyone.
 */
export async function revokeTokenAsPublicClient(
  deps: TokenDeps,
  site: Pick<CallSite, "requestId" | "client">,
  clientId: string,
  text: string,
): Promise<void> {
  const client = clientId.length <= 40 ? await deps.prisma.oAuthClient.findUnique({ where: { id: clientId } }) : null;
  if (!client || client.disabled) throw unauthenticated(`public client ${clientId.slice(0, 40)} unknown or disabled`);
  deps.revokeLimiter.hit(`client:${client.id}`, "token revocations by this client");
  const token = await revocationSubject(deps, { jti: "", token: text });
  if (!token) return;
  if (token.clientId !== client.id) {
    throw unauthenticated(`token ${token.jti} was issued to ${token.clientId}, not to ${client.id}`);
  }
  const expiresAt = new Date(token.exp * 1000);
  if (expiresAt <= deps.clock.now()) return;
  const auditBase = {
    requestId: site.requestId,
    tenantId: token.tenantId ?? null,
    actorId: token.principalId,
    client: site.client,
  };
  await publishRevocation(deps, auditBase, token.jti, expiresAt, `public client ${client.id}`);
}

/** Authenticates calls that present a broker token (Bearer, or DPoP when bound). */
export function tokenAuthenticator(deps: TokenDeps): Authenticator {
  return {
    async authenticate({ bearer, scheme, headers, method, url }) {
      if (!bearer || bearer.startsWith("aegis_")) return undefined;
      if (!looksLikeJwt(bearer)) return undefined;
      const claims = await verifyToken(deps, bearer, deps.config.publicUrl);
      let dpopJkt: string | undefined;
      if (claims.cnf?.jkt) {
        // RFC 9449 §7.1: a bound token is only accepted with the DPoP scheme and a proof.
        if (scheme !== "dpop") throw unauthenticated("DPoP-bound token presented as a Bearer token");
        const proof = headers.get("dpop");
        if (!proof) throw unauthenticated("DPoP-bound token presented without a DPoP proof");
        dpopJkt = await checkDpop(deps, proof, { method, url }, bearer);
        if (dpopJkt !== claims.cnf.jkt) throw invalidDpopProof("proof key does not match the token's cnf.jkt");
      } else if (scheme === "dpop") {
        throw unauthenticated("DPoP scheme used with a token that is not DPoP-bound");
      }
      return {
        principalId: claims.sub,
        tenantId: claims.tenant_id,
        kind: claims.principal_kind as Caller["kind"],
        scopes: scopeSetOf(claims.scope),
        credentialType: "access_token",
        credentialId: claims.jti,
        ...(dpopJkt ? { dpopJkt } : {}),
      };
    },
  };
}
