// Authenticating OAuth clients: the callers of MintToken and of the token
// endpoint's client_credentials grant, who present an API key or user API
// token (Bearer, or the client secret of client_secret_basic/_post) or an
// RFC 7523 assertion signed by a key they registered, never a broker token
// (a token never mints a token). One function for both doors, run through
// the shared failed-authentication limit; a DPoP proof on the call is
// checked here too, once, and binds what the call issues.
import { decodeProtectedHeader, importJWK, type JWK, jwtVerify } from "jose";
import type { PrismaClient } from "../../gen/prisma/client.js";
import type { Caller } from "../core/caller.js";
import type { Clock } from "../core/clock.js";
import { unauthenticated } from "../core/errors/domain-error.js";
import { dpopAlgorithms } from "../protocol/dpop.js";
import { ScopeSet } from "../protocol/scope.js";
import type { Authenticator } from "./authenticate.js";
import { checkDpop, type DpopCheckDeps } from "./dpop-check.js";
import type { ReplayGuard } from "./replay-guard.js";

export interface ClientAuthenticationDeps extends DpopCheckDeps {
  readonly prisma: PrismaClient;
  readonly clock: Clock;
  readonly replay: ReplayGuard;
  readonly apiKeys: Authenticator;
  /** The broker's public URL: an assertion's audience. */
  readonly issuer: string;
}

/** API keys need no header but the secret; a Headers object per call costs microseconds. */
const noHeaders = new Headers();

/** What a client presented on one call. */
export interface ClientCredentials {
  /** The API key or user API token (from `Authorization: Bearer`, or the client secret of a form). */
  readonly secret?: string;
  /** An RFC 7523 client assertion. */
  readonly assertion?: string;
  /** The `DPoP` header, if any, and where the call went (for `htm`/`htu`). */
  readonly dpop?: string;
  readonly method: string;
  readonly url: string;
}

/** The authenticated client; `dpopJkt` set when the call carried a valid proof. */
export async function authenticateClient(
  deps: ClientAuthenticationDeps,
  presented: ClientCredentials,
): Promise<Caller> {
  if (presented.secret && presented.assertion)
    throw unauthenticated("both a client secret and an assertion were presented");
  let caller: Caller | undefined;
  if (presented.assertion) {
    caller = await authenticateAssertion(deps, presented.assertion);
  } else if (presented.secret && /^aegis_(?:ak|ut)_/.test(presented.secret)) {
    caller = await deps.apiKeys.authenticate({
      bearer: presented.secret,
      scheme: "bearer",
      headers: noHeaders,
      method: presented.method,
      url: presented.url,
    });
  } else {
    throw unauthenticated("a client authenticates with an API key or a client assertion, not a token");
  }
  if (!caller) throw unauthenticated("API key not recognised");
  if (!presented.dpop) return caller;
  return { ...caller, dpopJkt: await checkDpop(deps, presented.dpop, presented) };
}

/** RFC 7523 §3: iss = sub = the principal, aud = the broker, short exp, single-use jti, registered key. */
async function authenticateAssertion(deps: ClientAuthenticationDeps, assertion: string): Promise<Caller> {
  if (assertion.length > 8192) throw unauthenticated("client assertion too long");
  let kid: unknown;
  let alg: unknown;
  try {
    ({ kid, alg } = decodeProtectedHeader(assertion));
  } catch {
    throw unauthenticated("client assertion is not a JWS");
  }
  if (typeof kid !== "string" || kid.length > 100) throw unauthenticated("client assertion has no kid");
  if (typeof alg !== "string" || !dpopAlgorithms.includes(alg)) {
    throw unauthenticated(`assertion alg ${String(alg)} refused`);
  }
  const key = await deps.prisma.agentKey.findUnique({
    where: { id: kid },
    include: { principal: { include: { grants: { select: { scope: true } } } } },
  });
  if (key?.use !== "signing" || key.revokedAt) throw unauthenticated(`assertion key ${kid} unknown or revoked`);
  if (key.alg !== alg) throw unauthenticated(`assertion alg ${alg} does not match key ${kid} (${key.alg})`);
  if (key.principal.status !== "active") {
    throw unauthenticated(`principal ${key.principalId} is ${key.principal.status}`);
  }
  const issuer = deps.issuer;
  const now = deps.clock.now();
  let payload: { exp?: number; jti?: string };
  try {
    ({ payload } = await jwtVerify(assertion, await importJWK(key.jwk as JWK, key.alg), {
      algorithms: [key.alg],
      issuer: key.principalId,
      subject: key.principalId,
      audience: [issuer, `${issuer}/oauth/token`, `${issuer}/aegis.token.v1.TokenService/MintToken`],
      currentDate: now,
      maxTokenAge: 300,
      requiredClaims: ["exp", "iat", "jti"],
    }));
  } catch (error) {
    throw unauthenticated(`client assertion invalid: ${(error as Error).message}`);
  }
  const exp = payload.exp as number;
  if (exp * 1000 - now.getTime() > 300_000) throw unauthenticated("client assertion lives longer than 5 minutes");
  if (
    !(await deps.replay.claim("assertion", `${key.principalId}:${String(payload.jti)}`, new Date(exp * 1000 + 60_000)))
  ) {
    throw unauthenticated(`client assertion ${String(payload.jti)} was already used`);
  }
  return {
    principalId: key.principalId,
    tenantId: key.tenantId,
    kind: key.principal.kind,
    scopes: new ScopeSet(key.principal.grants.map((g) => g.scope)),
    credentialType: "client_assertion",
    credentialId: key.id,
    applicationScopes: "all",
  };
}
