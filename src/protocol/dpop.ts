// DPoP proof verification (RFC 9449), once for the whole broker and the SDK.
// Each check is small and fails closed:
//   §4.2  typ `dpop+jwt`; asymmetric `alg` only; `jwk` public, no private parts;
//         signature valid under that `jwk`;
//   §4.3  `htm` = request method, `htu` = request URL without query/fragment
//         (built from the configured public URL, never the Host header);
//         `iat` recent; `jti` present (single use is the caller's ReplayGuard);
//         `ath` = base64url(SHA-256(access token)) whenever a token is presented;
//   §8    `nonce` when the server demands one.
import { createHash, createPublicKey, type KeyObject, verify } from "node:crypto";
import {
  type CryptoKey,
  calculateJwkThumbprint,
  decodeJwt,
  decodeProtectedHeader,
  importJWK,
  type JWK,
  jwtVerify,
} from "jose";
import { hasPrivateKeyMaterial } from "./jwk.js";

/** Asymmetric JWS algorithms accepted for proofs; HMAC and `none` never. */
export const dpopAlgorithms = [
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
  "PS256",
  "PS384",
  "PS512",
  "RS256",
  "RS384",
  "RS512",
];

const maxProofLength = 8192;

export interface DpopCheck {
  readonly proof: string;
  readonly method: string;
  readonly url: string;
  /** The access token presented with the proof, if any: `ath` must match it. */
  readonly accessToken?: string;
  readonly now: Date;
  /** Oldest accepted `iat`, seconds (default 60). */
  readonly maxAgeSeconds?: number;
  /** How far in the future `iat` may be, seconds (default 5). */
  readonly futureSkewSeconds?: number;
  /** When set, the proof's `nonce` must satisfy it. */
  readonly nonce?: (nonce: unknown) => boolean;
}

export interface VerifiedDpopProof {
  /** RFC 7638 SHA-256 thumbprint of the proof key: the token's `cnf.jkt`. */
  readonly jkt: string;
  readonly jti: string;
  readonly iat: number;
}

/** Which check refused a proof: a closed set, so callers (the broker, the SDK) can say exactly why. */
export type DpopProofErrorCode =
  | "too_long"
  | "not_a_jws"
  | "wrong_typ"
  | "refused_alg"
  | "no_jwk"
  | "private_jwk"
  | "crit"
  | "bad_signature"
  | "no_jti"
  | "wrong_htm"
  | "wrong_htu"
  | "no_iat"
  | "too_old"
  | "from_the_future"
  | "expired"
  | "wrong_ath"
  | "nonce_required";

export class DpopProofError extends Error {
  override name = "DpopProofError";
  constructor(
    readonly code: DpopProofErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const refuse = (code: DpopProofErrorCode, message: string) => new DpopProofError(code, message);

/** A proof key, imported: for node:crypto when ES256 (see `verifyEs256`), for jose otherwise. */
type ProofKey = { readonly jkt: string } & ({ readonly es256: KeyObject } | { readonly jose: CryptoKey | Uint8Array });

/**
 * Public keys of recent proofs, imported once: a client proves with the same
 * key on every call, and importing it and computing its thumbprint cost
 * more than verifying (measured: 8% and 4% of a RedeemLease). Keyed by the
 * exact JWK text and algorithm. Either import refuses a key that does not fit
 * the algorithm (an RSA key labelled ES256, say).
 */
const proofKeys = new Map<string, ProofKey>();
async function proofKey(jwk: JWK, alg: string): Promise<ProofKey> {
  const cacheKey = `${alg} ${JSON.stringify(jwk)}`;
  let entry = proofKeys.get(cacheKey);
  if (!entry) {
    const jkt = await calculateJwkThumbprint(jwk, "sha256");
    entry = alg === "ES256" ? { jkt, es256: p256PublicKey(jwk) } : { jkt, jose: await importJWK(jwk, alg) };
    if (proofKeys.size >= 1000) proofKeys.delete(proofKeys.keys().next().value as string);
    proofKeys.set(cacheKey, entry);
  }
  return entry;
}

function p256PublicKey(jwk: JWK): KeyObject {
  const key = createPublicKey({ key: jwk as never, format: "jwk" });
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    throw new Error("ES256 needs a P-256 key");
  }
  return key;
}

/**
 * ES256, which nearly every DPoP client uses, is verified with node:crypto
 * on the event loop; other algorithms go through jose. jose verifies with
 * WebCrypto, which hands each verification to the thread pool, and on a busy
 * 2-core host that hand-off cost more than the verification (measured side
 * by side: 12% less broker CPU per DPoP-bound MintToken, 8% per
 * RedeemLease). What jose checks of a JWS's form is checked here too: three
 * parts, a signature of exactly 64 bytes (r || s, RFC 7518 §3.4) in
 * canonical base64url, a payload that is a JSON object. `crit` is refused
 * for every algorithm before this.
 */
function verifyEs256(proof: string, key: KeyObject): Record<string, unknown> {
  const parts = proof.split(".");
  if (parts.length !== 3) throw new Error("not a compact JWS");
  const [header, payload, signature] = parts as [string, string, string];
  const bytes = Buffer.from(signature, "base64url");
  if (bytes.length !== 64 || bytes.toString("base64url") !== signature) throw new Error("malformed ES256 signature");
  if (!verify("sha256", Buffer.from(`${header}.${payload}`), { key, dsaEncoding: "ieee-p1363" }, bytes)) {
    throw new Error("signature verification failed");
  }
  return decodeJwt(proof);
}

export async function verifyDpopProof(check: DpopCheck): Promise<VerifiedDpopProof> {
  if (check.proof.length > maxProofLength) throw refuse("too_long", "proof too long");
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(check.proof);
  } catch {
    throw refuse("not_a_jws", "proof is not a JWS");
  }
  if (header.typ !== "dpop+jwt") throw refuse("wrong_typ", `typ is ${String(header.typ)}, not dpop+jwt`);
  if (typeof header.alg !== "string" || !dpopAlgorithms.includes(header.alg)) {
    throw refuse("refused_alg", `alg ${String(header.alg)} is not an accepted asymmetric algorithm`);
  }
  const jwk = header.jwk as JWK | undefined;
  if (!jwk || typeof jwk !== "object") throw refuse("no_jwk", "no jwk header");
  if (hasPrivateKeyMaterial(jwk)) throw refuse("private_jwk", "jwk contains private key material");
  if (header.crit !== undefined) throw refuse("crit", "crit is not supported");

  let payload: Record<string, unknown>;
  let jkt: string;
  try {
    const key = await proofKey(jwk, header.alg);
    jkt = key.jkt;
    payload =
      "es256" in key
        ? verifyEs256(check.proof, key.es256)
        : (
            await jwtVerify(check.proof, key.jose, {
              algorithms: [header.alg],
              typ: "dpop+jwt",
              currentDate: check.now,
            })
          ).payload;
  } catch (error) {
    throw refuse("bad_signature", `signature or structure invalid: ${(error as Error).message}`);
  }

  if (typeof payload.jti !== "string" || payload.jti.length === 0 || payload.jti.length > 256) {
    throw refuse("no_jti", "jti missing or too long");
  }
  if (payload.htm !== check.method)
    throw refuse("wrong_htm", `htm ${String(payload.htm)} does not match ${check.method}`);
  if (typeof payload.htu !== "string" || normalizeHtu(payload.htu) !== normalizeHtu(check.url)) {
    throw refuse("wrong_htu", `htu ${String(payload.htu)} does not match ${check.url}`);
  }
  const now = Math.floor(check.now.getTime() / 1000);
  if (typeof payload.iat !== "number") throw refuse("no_iat", "iat missing");
  if (payload.iat < now - (check.maxAgeSeconds ?? 60)) throw refuse("too_old", "proof too old");
  if (payload.iat > now + (check.futureSkewSeconds ?? 5)) throw refuse("from_the_future", "proof issued in the future");
  // RFC 9449 proofs carry no exp; one that does must not have passed it (as jose checks).
  if (payload.exp !== undefined && !(typeof payload.exp === "number" && payload.exp > now)) {
    throw refuse("expired", "proof expired");
  }
  if (check.accessToken !== undefined) {
    const ath = createHash("sha256").update(check.accessToken).digest("base64url");
    if (payload.ath !== ath) throw refuse("wrong_ath", "ath does not match the access token");
  }
  if (check.nonce && !check.nonce(payload.nonce)) throw refuse("nonce_required", "nonce missing or stale");
  return { jkt, jti: payload.jti, iat: payload.iat };
}

/** RFC 9449 §4.3: compare without query and fragment; scheme and host case-insensitively. */
export function normalizeHtu(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return `invalid:${url}`;
  }
}
