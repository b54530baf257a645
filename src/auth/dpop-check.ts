// The broker's DPoP check, in one place for every way in (RPC pipeline,
// MintToken, the OAuth token endpoint, the device flow): the proof itself
// (protocol/dpop.ts, shared with the SDK), its single use on every instance
// (the replay guard), and the server nonce when one is required (RFC 9449
// §8). A refusal says only "invalid DPoP proof" on the wire; which check
// refused goes to the log and the audit trail.
import type { Clock } from "../core/clock.js";
import { DomainError, invalidDpopProof } from "../core/errors/domain-error.js";
import type { Tracing } from "../core/tracing.js";
import { DpopProofError, verifyDpopProof } from "../protocol/dpop.js";
import type { DpopNonces } from "./dpop-nonce.js";
import type { ReplayGuard } from "./replay-guard.js";

export interface DpopCheckDeps {
  readonly clock: Clock;
  readonly replay: ReplayGuard;
  /** Set when AEGIS_DPOP_NONCE demands server nonces. */
  readonly nonces: DpopNonces | undefined;
  /** A child span per check (a signature and a database round trip); absent when tracing is off. */
  readonly tracing?: Tracing;
}

/** Verifies a proof for a call and claims its jti; returns the proof key's thumbprint. */
export function checkDpop(
  deps: DpopCheckDeps,
  proof: string,
  site: { readonly method: string; readonly url: string },
  accessToken?: string,
): Promise<string> {
  const check = () => checkProof(deps, proof, site, accessToken);
  return deps.tracing ? deps.tracing.child("dpop check", {}, check) : check();
}

async function checkProof(
  deps: DpopCheckDeps,
  proof: string,
  site: { readonly method: string; readonly url: string },
  accessToken: string | undefined,
): Promise<string> {
  let verified: Awaited<ReturnType<typeof verifyDpopProof>>;
  try {
    verified = await verifyDpopProof({
      proof,
      method: site.method,
      url: site.url,
      now: deps.clock.now(),
      ...(accessToken === undefined ? {} : { accessToken }),
      ...(deps.nonces ? { nonce: deps.nonces.accepts } : {}),
    });
  } catch (error) {
    if (!(error instanceof DpopProofError)) throw error;
    if (error.code === "nonce_required" && deps.nonces) {
      throw new DomainError("unauthenticated", "USE_DPOP_NONCE", "a DPoP nonce is required", {
        headers: { "dpop-nonce": deps.nonces.current() },
        detail: error.message,
      });
    }
    throw invalidDpopProof(`${error.code}: ${error.message}`);
  }
  const until = new Date((verified.iat + 120) * 1000);
  if (!(await deps.replay.claim("dpop", `${verified.jkt}:${verified.jti}`, until))) {
    throw invalidDpopProof(`replayed: proof ${verified.jti} was already used`);
  }
  return verified.jkt;
}
