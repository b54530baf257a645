// The checks of an authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3,
// RFC 8707 §2), as an ordered table in three stages, because where a failure
// may be reported depends on how far the request got (§4.1.2.1):
//
// 1. `client`: the client and its redirect URI. Until both are verified,
//    nothing is sent to the redirect URI: the failure is shown to the person
//    on the broker's page (no open redirector, RFC 9700 §4.11).
// 2. `request`: the rest of the request on its own (response type, PKCE,
//    state, scope syntax, resource): reported to the verified redirect URI.
// 3. `forPerson`: once someone is signed in, what they may be asked for: the
//    client serves their tenant, the audience is the broker or a resource
//    server of their tenant (the client's allowed audiences for a tenant's
//    client), the scopes are the client's and the audience's.
import type { OAuthClient } from "../../gen/prisma/client.js";
import type { Caller } from "../core/caller.js";
import { DomainError } from "../core/errors/domain-error.js";
import { parseScopes } from "../policy/scope-checks.js";
import { formatScope, ScopeSet } from "../protocol/scope.js";
import { type Audience, audienceOf, catalogueScopes, heldApplicationScopes } from "../resource-servers/index.js";
import { matchesRedirectUri, redirectUrisOf } from "./clients.js";
import type { DeviceDeps } from "./device-grant.js";

/** A failure shown on the broker's page: the client or its redirect URI could not be verified. */
export class UnverifiedClient extends Error {
  override name = "UnverifiedClient";
}

/** A failure reported to the verified redirect URI with an RFC 6749 §4.1.2.1 error code. */
export class AuthorizationError extends Error {
  override name = "AuthorizationError";
  constructor(
    readonly error:
      | "invalid_request"
      | "unsupported_response_type"
      | "invalid_scope"
      | "access_denied"
      | "invalid_target",
    readonly description: string,
  ) {
    super(description);
  }
}

/** A request whose client and redirect URI are verified. */
export interface VerifiedClient {
  readonly client: OAuthClient;
  readonly redirectUri: string;
  /** Undefined when absent; round-tripped as sent. */
  readonly state: string | undefined;
}

/** A request valid on its own. */
export interface AuthorizationRequest extends VerifiedClient {
  readonly codeChallenge: string;
  readonly scopes: readonly string[];
  readonly audience: string;
}

/** A request fit for the signed-in person: the audience resolved, the scopes canonical. */
export interface PersonRequest extends AuthorizationRequest {
  readonly target: Audience;
  /** What was asked for, canonical. */
  readonly requested: readonly string[];
  /** Of those, what the person holds (pre-selected on the consent page). */
  readonly held: readonly string[];
}

const codeChallengePattern = /^[A-Za-z0-9_-]{43}$/;
const maxStateLength = 1000;

/** The one value of a parameter; repeating one is malformed (RFC 6749 §3.1). */
function single(query: URLSearchParams, name: string, onRepeat: (name: string) => Error): string | undefined {
  const values = query.getAll(name);
  if (values.length > 1) throw onRepeat(name);
  return values[0];
}

export async function verifyClient(deps: Pick<DeviceDeps, "prisma">, query: URLSearchParams): Promise<VerifiedClient> {
  const repeated = (name: string) => new UnverifiedClient(`the parameter ${name} is repeated`);
  const clientId = single(query, "client_id", repeated) ?? "";
  const client =
    clientId && clientId.length <= 40 ? await deps.prisma.oAuthClient.findUnique({ where: { id: clientId } }) : null;
  if (!client || client.disabled) throw new UnverifiedClient("unknown or disabled client");
  const registered = redirectUrisOf(client);
  if (registered.length === 0) throw new UnverifiedClient("this client has no redirect URI registered");
  // Required, even with one registered URI (OAuth 2.1 §4.1.1): nothing is guessed.
  const redirectUri = single(query, "redirect_uri", repeated);
  if (!redirectUri) throw new UnverifiedClient("redirect_uri is required");
  if (redirectUri.length > 2000 || !matchesRedirectUri(registered, redirectUri)) {
    throw new UnverifiedClient("redirect_uri is not registered for this client");
  }
  const state = single(query, "state", repeated);
  if (state !== undefined && state.length > maxStateLength) throw new UnverifiedClient("state is too long");
  return { client, redirectUri, state };
}

export function checkRequest(
  verified: VerifiedClient,
  query: URLSearchParams,
  brokerUrl: string,
): AuthorizationRequest {
  const malformed = (name: string) => new AuthorizationError("invalid_request", `the parameter ${name} is repeated`);
  const responseType = single(query, "response_type", malformed);
  if (!responseType) throw new AuthorizationError("invalid_request", "response_type is required");
  if (responseType !== "code") {
    throw new AuthorizationError("unsupported_response_type", "only response_type=code is supported");
  }
  // RFC 7636 §4.4.1: PKCE is required; a missing method means plain, which is refused.
  const codeChallenge = single(query, "code_challenge", malformed);
  const method = single(query, "code_challenge_method", malformed);
  if (!codeChallenge) throw new AuthorizationError("invalid_request", "code_challenge is required (PKCE, RFC 7636)");
  if (method !== "S256") throw new AuthorizationError("invalid_request", "code_challenge_method must be S256");
  if (!codeChallengePattern.test(codeChallenge)) {
    throw new AuthorizationError("invalid_request", "code_challenge must be BASE64URL(SHA256(code_verifier))");
  }
  const scopeText = single(query, "scope", malformed) ?? "";
  const scopes = [...new Set(scopeText.split(" ").filter(Boolean))];
  if (scopes.length > 50) throw new AuthorizationError("invalid_scope", "at most 50 scopes");
  // RFC 8707 §2: one resource here (one audience per token), absolute, no fragment.
  const resources = query.getAll("resource");
  if (resources.length > 1) throw new AuthorizationError("invalid_target", "one resource per request");
  const audience = resources[0] ?? brokerUrl;
  if (audience.length > 256 || !URL.canParse(audience) || audience.includes("#")) {
    throw new AuthorizationError("invalid_target", "resource must be an absolute URI without fragment");
  }
  return { ...verified, codeChallenge, scopes, audience };
}

export async function checkForPerson(
  deps: Pick<DeviceDeps, "prisma" | "config">,
  request: AuthorizationRequest,
  person: Caller,
): Promise<PersonRequest> {
  const { client } = request;
  if (person.kind !== "person") throw new AuthorizationError("access_denied", "only people sign in here");
  if (client.tenantId !== null && client.tenantId !== person.tenantId) {
    throw new AuthorizationError("access_denied", "this client does not serve your tenant");
  }
  const brokerUrl = deps.config.publicUrl;
  if (client.tenantId !== null && request.audience !== brokerUrl) {
    if (!client.allowedAudiences.split(" ").includes(request.audience)) {
      throw new AuthorizationError("invalid_target", "this resource is not allowed to this client");
    }
  }
  try {
    const target = await audienceOf(deps, person.tenantId, request.audience);
    if (target.kind === "resource") {
      const requested = catalogueScopes(target.server, request.scopes, "person");
      const held = await heldApplicationScopes(deps.prisma, person, target.server.id);
      return { ...request, target, requested, held: requested.filter((s) => held.has(s)) };
    }
    const parsed = parseScopes("scope", request.scopes, { wildcards: true });
    const allowed = new ScopeSet(client.allowedScopes.split(" ").filter(Boolean));
    const refused = parsed.filter((s) => !allowed.covers(s)).map(formatScope);
    if (refused.length)
      throw new AuthorizationError("invalid_scope", `not allowed to this client: ${refused.join(" ")}`);
    return {
      ...request,
      target,
      requested: parsed.map(formatScope),
      held: parsed.filter((s) => person.scopes.covers(s)).map(formatScope),
    };
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    throw new AuthorizationError(error.reason === "INVALID_TARGET" ? "invalid_target" : "invalid_scope", error.message);
  }
}
