// The self-describing form of what the KMS hands out: ciphertexts,
// signatures, MACs and wrapped keys all start with a header naming the
// format, kind, algorithm, key version and key id (as Vault Transit's
// `vault:v3:` prefix does), so decrypt and verify use the version that made
// them. For ciphertexts and wrapped keys the header is part of the
// authenticated data, with the encryption context in canonical form: a
// changed byte anywhere, another version, another context or a truncation
// fails authentication.
//
//   byte 0      format (0xA1)
//   byte 1      kind (1 ciphertext, 2 signature, 3 MAC, 4 wrapped key)
//   byte 2      algorithm code (below)
//   bytes 3-6   key version, unsigned big-endian
//   byte 7      key id length n (1..64), then n bytes of key id (ASCII)
//   the rest    the payload
import type { AlgorithmName } from "./specs.js";

const format = 0xa1;

export const envelopeKinds = { ciphertext: 1, signature: 2, mac: 3, wrappedKey: 4 } as const;
export type EnvelopeKind = keyof typeof envelopeKinds;

const algorithmCodes: Record<AlgorithmName, number> = {
  rsassa_pss_sha_256: 1,
  rsassa_pss_sha_384: 2,
  rsassa_pss_sha_512: 3,
  rsassa_pkcs1_v1_5_sha_256: 4,
  rsassa_pkcs1_v1_5_sha_384: 5,
  rsassa_pkcs1_v1_5_sha_512: 6,
  ecdsa_sha_256: 7,
  ecdsa_sha_384: 8,
  ecdsa_sha_512: 9,
  ed25519: 10,
  ed448: 11,
  aes_gcm: 21,
  rsaes_oaep_sha_256: 22,
  hmac_sha_256: 31,
  hmac_sha_384: 32,
  hmac_sha_512: 33,
};
const algorithmsByCode = new Map(Object.entries(algorithmCodes).map(([name, code]) => [code, name as AlgorithmName]));

export interface EnvelopeHeader {
  readonly kind: EnvelopeKind;
  readonly algorithm: AlgorithmName;
  readonly version: number;
  readonly keyId: string;
}

export interface Envelope extends EnvelopeHeader {
  /** The header's bytes, as authenticated. */
  readonly header: Buffer;
  readonly payload: Buffer;
}

/** The header bytes of an envelope. */
export function encodeHeader(h: EnvelopeHeader): Buffer {
  const id = Buffer.from(h.keyId, "ascii");
  const header = Buffer.alloc(8 + id.length);
  header[0] = format;
  header[1] = envelopeKinds[h.kind];
  header[2] = algorithmCodes[h.algorithm];
  header.writeUInt32BE(h.version, 3);
  header[7] = id.length;
  id.copy(header, 8);
  return header;
}

/** Reads an envelope of `kind`; undefined when it is not one (the caller says only "failed"). */
export function decodeEnvelope(bytes: Uint8Array, kind: EnvelopeKind): Envelope | undefined {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 9 || buf[0] !== format || buf[1] !== envelopeKinds[kind]) return undefined;
  const algorithm = algorithmsByCode.get(buf[2] as number);
  const idLength = buf[7] as number;
  if (!algorithm || idLength === 0 || idLength > 64 || buf.length < 8 + idLength) return undefined;
  const keyId = buf.subarray(8, 8 + idLength).toString("ascii");
  return {
    kind,
    algorithm,
    version: buf.readUInt32BE(3),
    keyId,
    header: buf.subarray(0, 8 + idLength),
    payload: buf.subarray(8 + idLength),
  };
}

/**
 * The encryption context in canonical form: entries sorted by key (code
 * point order), each key and value as a 4-byte big-endian length and its
 * UTF-8 bytes, after a 4-byte count. Unambiguous: no two maps share a form.
 */
export function canonicalContext(context: Readonly<Record<string, string>>): Buffer {
  const keys = Object.keys(context).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const parts: Buffer[] = [u32(keys.length)];
  for (const key of keys) {
    const k = Buffer.from(key, "utf8");
    const v = Buffer.from(context[key] as string, "utf8");
    parts.push(u32(k.length), k, u32(v.length), v);
  }
  return Buffer.concat(parts);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
