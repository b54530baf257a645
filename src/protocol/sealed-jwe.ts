// The shape of a sealed credential: a JWE in general JSON serialization
// (RFC 7516 §7.2.1), one recipient per public key allowed to open it. The
// broker checks the structure strictly (it cannot check the content: it has
// no key that opens it) and later cuts out one recipient as a flattened JWE
// (§7.2.2) for a redeemer.
//
// Accepted: per-recipient `alg` ECDH-ES+A256KW with an X25519 or P-256
// ephemeral public key, `enc` A256GCM in the protected header, no `zip`, no
// `crit`, no shared unprotected header. Anything else is refused rather than
// stored: a credential nobody can open is found out now, not at 3 a.m.

export const maxSealedBytes = 64 * 1024;
const maxRecipients = 32;
const b64url = /^[A-Za-z0-9_-]+$/;

export class SealedJweError extends Error {
  override name = "SealedJweError";
}

export interface SealedRecipient {
  readonly kid: string;
  /** Curve of the ephemeral key: must match the recipient key's. */
  readonly crv: "X25519" | "P-256";
}

interface GeneralJwe {
  protected: string;
  recipients: { header?: Record<string, unknown>; encrypted_key: string }[];
  iv: string;
  ciphertext: string;
  tag: string;
  aad?: string;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function onlyMembers(where: string, value: Record<string, unknown>, allowed: readonly string[]): void {
  const extra = Object.keys(value).filter((k) => !allowed.includes(k));
  if (extra.length > 0) throw new SealedJweError(`${where}: unexpected member ${extra[0]?.slice(0, 40)}`);
}

function bytesOf(where: string, value: unknown, length?: number): number {
  if (typeof value !== "string" || !b64url.test(value)) throw new SealedJweError(`${where} must be base64url`);
  const size = Buffer.from(value, "base64url").length;
  if (length !== undefined && size !== length) throw new SealedJweError(`${where} must be ${length} bytes`);
  return size;
}

function checkEpk(where: string, epk: unknown): SealedRecipient["crv"] {
  if (!isObject(epk)) throw new SealedJweError(`${where}.epk must be a public JWK`);
  if (epk.kty === "OKP" && epk.crv === "X25519") {
    onlyMembers(`${where}.epk`, epk, ["kty", "crv", "x"]);
    bytesOf(`${where}.epk.x`, epk.x, 32);
    return "X25519";
  }
  if (epk.kty === "EC" && epk.crv === "P-256") {
    onlyMembers(`${where}.epk`, epk, ["kty", "crv", "x", "y"]);
    bytesOf(`${where}.epk.x`, epk.x, 32);
    bytesOf(`${where}.epk.y`, epk.y, 32);
    return "P-256";
  }
  throw new SealedJweError(`${where}.epk must be an X25519 or P-256 public key`);
}

/** Parses and checks a sealed credential; returns its recipients. */
export function parseSealedJwe(text: string): { jwe: GeneralJwe; recipients: SealedRecipient[] } {
  if (Buffer.byteLength(text) > maxSealedBytes) throw new SealedJweError(`at most ${maxSealedBytes} bytes`);
  let jwe: unknown;
  try {
    jwe = JSON.parse(text);
  } catch {
    throw new SealedJweError("is not JSON (expected a JWE in general JSON serialization)");
  }
  if (!isObject(jwe)) throw new SealedJweError("is not a JSON object");
  onlyMembers("JWE", jwe, ["protected", "recipients", "iv", "ciphertext", "tag", "aad"]);
  bytesOf("protected", jwe.protected);
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(jwe.protected as string, "base64url").toString("utf8"));
  } catch {
    throw new SealedJweError("protected is not a base64url JSON header");
  }
  if (!isObject(header)) throw new SealedJweError("protected is not a JSON object");
  // One recipient: jose (like most libraries) puts its alg, kid and epk in
  // the protected header. Several: each recipient's own header holds them.
  onlyMembers("protected header", header, ["enc", "cty", "typ", "alg", "kid", "epk"]);
  const shared = header;
  if (header.enc !== "A256GCM") throw new SealedJweError("protected header: enc must be A256GCM");
  bytesOf("iv", jwe.iv, 12);
  bytesOf("tag", jwe.tag, 16);
  bytesOf("ciphertext", jwe.ciphertext);
  if (jwe.aad !== undefined) bytesOf("aad", jwe.aad);
  const list = jwe.recipients;
  if (!Array.isArray(list) || list.length === 0 || list.length > maxRecipients) {
    throw new SealedJweError(`recipients must be a list of 1 to ${maxRecipients}`);
  }
  if (list.length > 1 && ["alg", "kid", "epk"].some((k) => k in shared)) {
    throw new SealedJweError("protected header: alg, kid and epk belong in each recipient's header");
  }
  const recipients = list.map((recipient: unknown, i): SealedRecipient => {
    const where = `recipients[${i}]`;
    if (!isObject(recipient)) throw new SealedJweError(`${where} must be an object`);
    onlyMembers(where, recipient, ["header", "encrypted_key"]);
    bytesOf(`${where}.encrypted_key`, recipient.encrypted_key, 40);
    const own = recipient.header ?? {};
    if (!isObject(own)) throw new SealedJweError(`${where}.header must be an object`);
    onlyMembers(`${where}.header`, own, ["alg", "kid", "epk"]);
    const twice = Object.keys(own).find((k) => k in shared);
    if (twice) throw new SealedJweError(`${where}.header: ${twice} is also in the protected header`);
    const h = { ...shared, ...own };
    if (h.alg !== "ECDH-ES+A256KW") throw new SealedJweError(`${where}.header: alg must be ECDH-ES+A256KW`);
    if (typeof h.kid !== "string" || h.kid.length === 0 || h.kid.length > 100) {
      throw new SealedJweError(`${where}.header: kid must name a registered key`);
    }
    return { kid: h.kid, crv: checkEpk(`${where}.header`, h.epk) };
  });
  if (new Set(recipients.map((r) => r.kid)).size !== recipients.length) {
    throw new SealedJweError("recipients: each kid at most once");
  }
  return { jwe: jwe as unknown as GeneralJwe, recipients };
}

/** The JWE for one recipient only, in flattened JSON serialization. */
export function forRecipient(text: string, kid: string): string | undefined {
  const jwe = JSON.parse(text) as GeneralJwe;
  const shared = JSON.parse(Buffer.from(jwe.protected, "base64url").toString("utf8")) as { kid?: string };
  const recipient = jwe.recipients.find((r) => (r.header?.kid ?? shared.kid) === kid);
  if (!recipient) return undefined;
  return JSON.stringify({
    protected: jwe.protected,
    ...(recipient.header ? { header: recipient.header } : {}),
    encrypted_key: recipient.encrypted_key,
    iv: jwe.iv,
    ciphertext: jwe.ciphertext,
    tag: jwe.tag,
    ...(jwe.aad === undefined ? {} : { aad: jwe.aad }),
  });
}
