// The one place that turns failures into OAuth JSON errors (RFC 6749 §5.2,
// RFC 9449 §7.1/§8) for the HTTP endpoints. Codes map exhaustively; a few
// reasons have a more precise OAuth error. Anything unexpected is a bare
// `server_error`, its cause kept for the log.
import { fromDatabaseError } from "./database-error.js";
import { DomainError, type DomainErrorCode } from "./domain-error.js";
import { type ChallengeContext, clientChallenges } from "./www-authenticate.js";

export interface OAuthErrorResponse {
  readonly status: number;
  readonly body: { error: string; error_description?: string };
  readonly headers: Record<string, string | string[]>;
}

const byCode = {
  invalid_argument: [400, "invalid_request"],
  not_found: [400, "invalid_request"],
  already_exists: [400, "invalid_request"],
  unauthenticated: [401, "invalid_client"],
  permission_denied: [403, "access_denied"],
  failed_precondition: [400, "invalid_request"],
  aborted: [409, "invalid_request"],
  resource_exhausted: [429, "slow_down"],
  deadline_exceeded: [503, "temporarily_unavailable"],
  unavailable: [503, "temporarily_unavailable"],
} as const satisfies Record<DomainErrorCode, readonly [number, string]>;

const byReason: Readonly<Record<string, readonly [number, string]>> = {
  INVALID_DPOP_PROOF: [400, "invalid_dpop_proof"],
  USE_DPOP_NONCE: [400, "use_dpop_nonce"],
  SCOPE_NOT_GRANTED: [400, "invalid_scope"],
  UNSUPPORTED_GRANT_TYPE: [400, "unsupported_grant_type"],
  // RFC 8628 §3.5 and RFC 6749 §5.2 outcomes of the device flow.
  AUTHORIZATION_PENDING: [400, "authorization_pending"],
  SLOW_DOWN: [400, "slow_down"],
  EXPIRED_TOKEN: [400, "expired_token"],
  ACCESS_DENIED: [400, "access_denied"],
  INVALID_GRANT: [400, "invalid_grant"],
  INVALID_CLIENT: [401, "invalid_client"],
  UNAUTHORIZED_CLIENT: [400, "unauthorized_client"],
  INVALID_SCOPE: [400, "invalid_scope"],
  INVALID_TARGET: [400, "invalid_target"],
};

/**
 * @param challenge how the client presented its credential: a 401 challenges
 *   with the scheme the client used (RFC 6749 §5.2)
 */
export function toOAuthError(thrown: unknown, challenge: ChallengeContext): OAuthErrorResponse {
  const error = fromDatabaseError(thrown) ?? thrown;
  if (!(error instanceof DomainError)) {
    return { status: 500, body: { error: "server_error" }, headers: {} };
  }
  const [status, code] = byReason[error.reason] ?? byCode[error.code];
  const headers: Record<string, string | string[]> = { ...error.options.headers };
  if (status === 401) headers["www-authenticate"] = clientChallenges(error, challenge);
  return { status, body: { error: code, error_description: error.message }, headers };
}
