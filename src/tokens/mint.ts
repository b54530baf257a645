// Minting broker tokens (RFC 9068 profile): for a client the pipeline
// authenticated (MintToken, the token endpoint's client_credentials grant),
// or for an already decided grant (the device flow). The answer waits for
// the audit event, so no token leaves unaudited.
import type { Duration } from "@bufbuild/protobuf/wkt";
import type { CallSite } from "../core/call.js";
import type { Caller } from "../core/caller.js";
import { clientNetwork } from "../core/client-network.js";
import { optionalSeconds } from "../core/duration.js";
import { DomainError, invalidArgument } from "../core/errors/domain-error.js";
import { lifetimeWithin } from "../policy/credential-issuance.js";
import { assertCovers, parseScopes } from "../policy/scope-checks.js";
import { type AccessTokenClaims, signAccessToken } from "../protocol/access-token.js";
import { newJti } from "../protocol/jti.js";
import { formatScope, type Scope } from "../protocol/scope.js";
import {
  assertApplicationScopesHeld,
  assertBindingAllowed,
  audienceOf,
  catalogueScopes,
  lifetimeFor,
} from "../resource-servers/index.js";
import type { TokenDeps } from "./token-deps.js";

export interface MintRequest {
  readonly audience: string;
  readonly scopes: readonly string[];
  /** Unset: the audience's default lifetime. */
  readonly lifetime?: Duration | undefined;
  readonly clientAssertion: string;
}

export interface MintedToken {
  readonly accessToken: string;
  readonly tokenType: "DPoP" | "Bearer";
  readonly expiresIn: number;
  readonly scope: string;
  readonly jti: string;
}

/**
 * What the request rules of MintTokenRequest (token.proto) cannot say: the
 * lifetime's upper bound is configuration. Both ways in (the RPC and the
 * OAuth token endpoint) have applied those rules before this runs.
 */
function validateMint(request: MintRequest, maxLifetime: number): Scope[] {
  if ((optionalSeconds(request.lifetime) ?? 0) > maxLifetime) {
    throw invalidArgument([{ field: "lifetime", description: `must be at most ${maxLifetime}s` }]);
  }
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
  /** `iat`: the clock's time unless given (the time `lifetimeSeconds` was counted from). */
  readonly issuedAt?: Date;
  /** Marks a broker token minted by a credential that expires (`aegis_bounded`). */
  readonly bounded?: boolean;
}

/**
 * Signs a token for an already decided grant and records it: the response
 * waits for the audit batch, so no token leaves unaudited.
 */
export async function issueAccessToken(deps: TokenDeps, site: CallSite, grant: TokenGrant): Promise<MintedToken> {
  const iat = Math.floor((grant.issuedAt ?? deps.clock.now()).getTime() / 1000);
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
    ...(grant.bounded ? { aegis_bounded: true } : {}),
  };
  const { signer } = deps.keyRing.snapshot;
  const sign = () => signAccessToken(signer, claims);
  const accessToken = deps.tracing
    ? deps.tracing.child("token sign", { "aegis.key.id": signer.kid, "aegis.token.jti": claims.jti }, sign)
    : sign();
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
 * carried a DPoP proof, to which the token is then bound). For the broker's
 * own URL the scopes are broker scopes; for a registered resource server,
 * scopes of its catalogue that the client holds there, under its policy.
 * The token ends no later than the credential presented (`expires_in` then
 * says less than asked: policy/credential-issuance.ts).
 */
export async function mintToken(
  deps: TokenDeps,
  site: CallSite,
  caller: Caller,
  request: MintRequest,
): Promise<MintedToken> {
  try {
    // Together: on PostgreSQL the two hits then share one statement (shared-rate-limit.ts).
    await Promise.all([
      deps.mintLimiter.hit(`address:${clientNetwork(site.clientAddress)}`, "token requests from this address"),
      deps.mintLimiter.hit(`principal:${caller.principalId}`, "token requests for this client"),
    ]);
    const audience = await audienceOf(deps, caller.tenantId, request.audience);
    const binding = caller.dpopJkt ? { jkt: caller.dpopJkt } : {};
    const issuedAt = deps.clock.now();
    if (audience.kind === "broker") {
      const { defaultSeconds, maxSeconds } = deps.config.tokenLifetime;
      const scopes = validateMint(request, maxSeconds);
      assertCovers(caller, scopes, "this token", "SCOPE_NOT_GRANTED");
      return await issueAccessToken(deps, site, {
        subject: caller,
        clientId: caller.principalId,
        audience: request.audience,
        scope: scopes.map(formatScope).join(" "),
        lifetimeSeconds: lifetimeWithin(caller, issuedAt, optionalSeconds(request.lifetime) ?? defaultSeconds),
        issuedAt,
        // What it issues in turn ends with it (verify.ts reads the mark back).
        ...(caller.credentialExpiresAt ? { bounded: true } : {}),
        ...binding,
      });
    }
    const { server } = audience;
    const lifetimeSeconds = lifetimeWithin(caller, issuedAt, lifetimeFor(server, optionalSeconds(request.lifetime)));
    const scopes = catalogueScopes(server, request.scopes, caller.kind);
    assertBindingAllowed(server, caller.dpopJkt);
    await assertApplicationScopesHeld(deps.prisma, caller, server, scopes, "this token");
    return await issueAccessToken(deps, site, {
      subject: caller,
      clientId: caller.principalId,
      audience: server.identifier,
      scope: scopes.join(" "),
      lifetimeSeconds,
      issuedAt,
      ...binding,
    });
  } catch (error) {
    // Malformed requests are the client's bug; every other refusal (an
    // unknown audience or scope included) is an attempt worth auditing.
    if (error instanceof DomainError && error.reason !== "INVALID_ARGUMENT") {
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
