// `WWW-Authenticate` challenges for every 401 the broker sends (RFC 9110
// §11.6.1 requires one), in the forms stock OAuth clients parse:
//
// - the API (RPCs and resource endpoints): `Bearer` (RFC 6750 §3) and/or
//   `DPoP` (RFC 9449 §7.1) with `error`, `error_description` and, for DPoP,
//   `algs`; a proof without the server's nonce gets `error="use_dpop_nonce"`
//   beside the `DPoP-Nonce` header (§9), which openid-client retries on;
// - the token endpoint: the scheme the client authenticated with (RFC 6749
//   §5.2), `Basic` when it used none.
//
// The description stays as vague as the error's wire message; the precise
// reason goes to the log and the audit trail.
import type { DomainError } from "./domain-error.js";

/** The request as a challenge needs it: how the client presented its credential, and which DPoP algorithms the broker takes. */
export interface ChallengeContext {
  readonly presented: PresentedScheme;
  /** The metadata's `dpop_signing_alg_values_supported`, listed in every DPoP challenge. */
  readonly dpopAlgorithms: readonly string[];
}

/** How the client presented its credential: the scheme of its Authorization header. */
export type PresentedScheme = "bearer" | "dpop" | "basic" | "none";

export const realm = "aegis";

export function presentedScheme(authorization: string | null | undefined): PresentedScheme {
  const scheme = /^(\S+)/.exec(authorization ?? "")?.[1]?.toLowerCase();
  return scheme === "bearer" || scheme === "dpop" || scheme === "basic" ? scheme : "none";
}

/** A quoted-string (RFC 9110 §5.6.4) carrying only safe characters. */
function quoted(text: string): string {
  return `"${text.replace(/[^\x20-\x7e]|["\\]/g, " ").slice(0, 200)}"`;
}

function challenge(scheme: "Bearer" | "DPoP", error: string, description: string, algs: readonly string[]): string {
  const params = [
    ...(scheme === "Bearer" ? [`realm=${quoted(realm)}`] : []),
    `error=${quoted(error)}`,
    `error_description=${quoted(description)}`,
    ...(scheme === "DPoP" ? [`algs=${quoted(algs.join(" "))}`] : []),
  ];
  return `${scheme} ${params.join(", ")}`;
}

/** The challenges of a 401 from the API: one per scheme the client could retry with. */
export function resourceChallenges(
  error: DomainError,
  { presented, dpopAlgorithms: algs }: ChallengeContext,
): string[] {
  const dpop = (code: string) => challenge("DPoP", code, error.message, algs);
  if (error.reason === "USE_DPOP_NONCE") return [dpop("use_dpop_nonce")];
  if (error.reason === "INVALID_DPOP_PROOF") return [dpop("invalid_dpop_proof")];
  if (presented === "dpop") return [dpop("invalid_token")];
  if (presented === "bearer") return [challenge("Bearer", "invalid_token", error.message, algs)];
  // No usable credential: either scheme will do.
  return [challenge("Bearer", "invalid_request", error.message, algs), dpop("invalid_request")];
}

/** The challenge of a 401 from the token endpoint (and the other client-authenticated OAuth endpoints). */
export function clientChallenges(error: DomainError, context: ChallengeContext): string[] {
  if (context.presented === "bearer" || context.presented === "dpop") return resourceChallenges(error, context);
  return [`Basic realm=${quoted(realm)}, charset="UTF-8"`];
}
