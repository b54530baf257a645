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
import { dpopAlgorithms } from "../../protocol/dpop.js";
import type { DomainError } from "./domain-error.js";

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

function challenge(scheme: "Bearer" | "DPoP", error: string, description: string): string {
  const params = [
    ...(scheme === "Bearer" ? [`realm=${quoted(realm)}`] : []),
    `error=${quoted(error)}`,
    `error_description=${quoted(description)}`,
    ...(scheme === "DPoP" ? [`algs=${quoted(dpopAlgorithms.join(" "))}`] : []),
  ];
  return `${scheme} ${params.join(", ")}`;
}

/** The challenges of a 401 from the API: one per scheme the client could retry with. */
export function resourceChallenges(error: DomainError, presented: PresentedScheme): string[] {
  if (error.reason === "USE_DPOP_NONCE") return [challenge("DPoP", "use_dpop_nonce", error.message)];
  if (error.reason === "INVALID_DPOP_PROOF") return [challenge("DPoP", "invalid_dpop_proof", error.message)];
  if (presented === "dpop") return [challenge("DPoP", "invalid_token", error.message)];
  if (presented === "bearer") return [challenge("Bearer", "invalid_token", error.message)];
  // No usable credential: either scheme will do.
  return [challenge("Bearer", "invalid_request", error.message), challenge("DPoP", "invalid_request", error.message)];
}

/** The challenge of a 401 from the token endpoint (and the other client-authenticated OAuth endpoints). */
export function clientChallenges(error: DomainError, presented: PresentedScheme): string[] {
  if (presented === "bearer" || presented === "dpop") return resourceChallenges(error, presented);
  return [`Basic realm=${quoted(realm)}, charset="UTF-8"`];
}
