// The cryptographic primitives of the KMS over node:crypto key objects, each
// a small function: sign / verify (messages or caller-made digests), HMAC,
// AES-GCM and RSA-OAEP with additional authenticated data. Nothing here
// knows about keys' states or grants; operations.ts decides whether to call.
//
// Digests: node:crypto always hashes what it signs, so ECDSA over a
// caller-made digest goes through @noble/curves (audited, pure JS, the
// digest taken as is: FIPS 186-5 §6.4.1 truncation to the order's length,
// DER output as for messages); RSASSA-PKCS1-v1_5 prefixes the DigestInfo (RFC 8017 §9.2);
// RSASSA-PSS encodes the digest with EMSA-PSS (RFC 8017 §9.1.1) and applies
// the raw RSA operation. Either way the signature is the same as for the
// message, so openssl and jose verify it with the message.
import {
  type CipherGCMTypes,
  constants,
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  type KeyObject,
  privateEncrypt,
  publicDecrypt,
  publicEncrypt,
  type SignKeyObjectInput,
  sign,
  verify,
  webcrypto,
} from "node:crypto";
import type { ECDSA } from "@noble/curves/abstract/weierstrass.js";
import { p256, p384, p521 } from "@noble/curves/nist.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sameSecret } from "../crypto/constant-time.js";
import { pooledRandomBytes } from "../protocol/random-text.js";
import { type HashName, hashBytes, type SigningScheme } from "./specs.js";

/** A message, or its digest made by the caller. */
export type SignInput = { readonly message: Buffer } | { readonly digest: Buffer };

/** DigestInfo prefixes (RFC 8017 §9.2 note 1). */
const digestInfo: Record<HashName, Buffer> = {
  sha256: Buffer.from("3031300d060960864801650304020105000420", "hex"),
  sha384: Buffer.from("3041300d060960864801650304020205000430", "hex"),
  sha512: Buffer.from("3051300d060960864801650304020305000440", "hex"),
};

export async function signWith(scheme: SigningScheme, key: KeyObject, input: SignInput): Promise<Buffer> {
  if ("message" in input) {
    if (scheme.family === "ed") return sign(null, input.message, key);
    if (scheme.family === "ec") return sign(scheme.hash as string, input.message, key);
    return pooledSign(scheme.hash as string, input.message, rsaOptions(key, scheme));
  }
  const hash = scheme.hash as HashName;
  if (scheme.family === "ec") {
    const d = Buffer.from(key.export({ format: "jwk" }).d as string, "base64url");
    try {
      return Buffer.from(curveOf(key).sign(input.digest, d, { prehash: false, format: "der", lowS: false }));
    } finally {
      d.fill(0);
    }
  }
  if (scheme.padding === "pkcs1") {
    return privateEncrypt(
      { key, padding: constants.RSA_PKCS1_PADDING },
      Buffer.concat([digestInfo[hash], input.digest]),
    );
  }
  const modulusBits = key.asymmetricKeyDetails?.modulusLength as number;
  const em = emsaPssEncode(input.digest, hash, modulusBits - 1);
  return privateEncrypt({ key, padding: constants.RSA_NO_PADDING }, leftPad(em, Math.ceil(modulusBits / 8)));
}

/**
 * An RSA signature of a message, made on libuv's thread pool (node:crypto's
 * `sign` given a callback): the event loop only hands the job over and takes
 * the signature back. With 32 in flight on the bench host, an RSA-2048
 * signature took ~35 µs of the event loop this way against ~260 µs in place
 * (Sign RSA-2048 PSS, bench compare: 1.43 times the throughput). An ES256 or
 * Ed25519 signature (~25 µs) gains nothing measurable there, for ~7 µs more
 * CPU per signature, so those stay in place.
 */
function pooledSign(algorithm: string, data: Buffer, key: SignKeyObjectInput): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    sign(algorithm, data, key, (error, signature) => {
      if (error) reject(error);
      else resolve(signature);
    });
  });
}

export function verifyWith(scheme: SigningScheme, key: KeyObject, input: SignInput, signature: Buffer): boolean {
  try {
    if ("message" in input) {
      if (scheme.family === "ed") return verify(null, input.message, key, signature);
      if (scheme.family === "ec") return verify(scheme.hash as string, input.message, key, signature);
      return verify(scheme.hash as string, input.message, rsaOptions(key, scheme), signature);
    }
    const hash = scheme.hash as HashName;
    if (scheme.family === "ec") {
      const { x, y } = key.export({ format: "jwk" });
      const point = Buffer.concat([
        Buffer.from([4]),
        Buffer.from(x as string, "base64url"),
        Buffer.from(y as string, "base64url"),
      ]);
      return curveOf(key).verify(signature, input.digest, point, { prehash: false, format: "der", lowS: false });
    }
    const modulusBits = key.asymmetricKeyDetails?.modulusLength as number;
    if (signature.length !== Math.ceil(modulusBits / 8)) return false;
    if (scheme.padding === "pkcs1") {
      const recovered = publicDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, signature);
      return sameSecret(recovered, Buffer.concat([digestInfo[hash], input.digest]));
    }
    const raw = publicDecrypt({ key, padding: constants.RSA_NO_PADDING }, signature);
    const emLen = Math.ceil((modulusBits - 1) / 8);
    return emsaPssVerify(input.digest, raw.subarray(raw.length - emLen), hash, modulusBits - 1);
  } catch {
    // A signature that is not even well-formed does not verify.
    return false;
  }
}

const curves: Record<string, ECDSA> = { prime256v1: p256, secp384r1: p384, secp521r1: p521, secp256k1 };

function curveOf(key: KeyObject): ECDSA {
  return curves[key.asymmetricKeyDetails?.namedCurve as string] as ECDSA;
}

function rsaOptions(key: KeyObject, scheme: SigningScheme) {
  return scheme.padding === "pss"
    ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
    : { key, padding: constants.RSA_PKCS1_PADDING };
}

function mgf1(seed: Buffer, length: number, hash: HashName): Buffer {
  const out: Buffer[] = [];
  for (let counter = 0; out.length * hashBytes[hash] < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    out.push(createHash(hash).update(seed).update(c).digest());
  }
  return Buffer.concat(out).subarray(0, length);
}

/** EMSA-PSS-ENCODE (RFC 8017 §9.1.1) with MGF1 of the same hash and a salt of the hash's length. */
function emsaPssEncode(mHash: Buffer, hash: HashName, emBits: number): Buffer {
  const hLen = hashBytes[hash];
  const emLen = Math.ceil(emBits / 8);
  const salt = pooledRandomBytes(hLen);
  const h = createHash(hash).update(Buffer.alloc(8)).update(mHash).update(salt).digest();
  const db = Buffer.concat([Buffer.alloc(emLen - 2 * hLen - 2), Buffer.from([1]), salt]);
  const masked = xor(db, mgf1(h, emLen - hLen - 1, hash));
  masked[0] = (masked[0] as number) & (0xff >> (8 * emLen - emBits));
  return Buffer.concat([masked, h, Buffer.from([0xbc])]);
}

/** EMSA-PSS-VERIFY (RFC 8017 §9.1.2), salt of the hash's length. */
function emsaPssVerify(mHash: Buffer, em: Buffer, hash: HashName, emBits: number): boolean {
  const hLen = hashBytes[hash];
  const emLen = Math.ceil(emBits / 8);
  if (em.length !== emLen || em[emLen - 1] !== 0xbc || mHash.length !== hLen) return false;
  const masked = em.subarray(0, emLen - hLen - 1);
  const h = em.subarray(emLen - hLen - 1, emLen - 1);
  const topBits = 0xff >> (8 * emLen - emBits);
  if (((masked[0] as number) & ~topBits) !== 0) return false;
  const db = xor(masked, mgf1(h, emLen - hLen - 1, hash));
  db[0] = (db[0] as number) & topBits;
  const psLength = emLen - 2 * hLen - 2;
  if (!db.subarray(0, psLength).every((b) => b === 0) || db[psLength] !== 1) return false;
  const salt = db.subarray(psLength + 1);
  const expected = createHash(hash).update(Buffer.alloc(8)).update(mHash).update(salt).digest();
  return sameSecret(expected, h);
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) ^ (b[i] as number);
  return out;
}

function leftPad(b: Buffer, length: number): Buffer {
  return b.length >= length ? b : Buffer.concat([Buffer.alloc(length - b.length), b]);
}

export function hmac(hash: HashName, key: KeyObject, message: Buffer): Buffer {
  return createHmac(hash, key).update(message).digest();
}

const ivBytes = 12;
const tagBytes = 16;

function gcmOf(key: KeyObject): CipherGCMTypes {
  return `aes-${(key.symmetricKeySize as number) * 8}-gcm` as CipherGCMTypes;
}

/** AES-GCM: nonce, ciphertext, tag; `aad` authenticated, not stored. */
export function aesGcmSeal(key: KeyObject, plaintext: Buffer, aad: Buffer): Buffer {
  const iv = pooledRandomBytes(ivBytes);
  const cipher = createCipheriv(gcmOf(key), key, iv, {
    authTagLength: tagBytes,
  });
  cipher.setAAD(aad);
  return Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/** Opens what aesGcmSeal made; undefined on any mismatch. */
export function aesGcmOpen(key: KeyObject, sealed: Buffer, aad: Buffer): Buffer | undefined {
  if (sealed.length < ivBytes + tagBytes) return undefined;
  try {
    const decipher = createDecipheriv(gcmOf(key), key, sealed.subarray(0, ivBytes), { authTagLength: tagBytes });
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.subarray(sealed.length - tagBytes));
    return Buffer.concat([decipher.update(sealed.subarray(ivBytes, sealed.length - tagBytes)), decipher.final()]);
  } catch {
    return undefined;
  }
}

/** The most RSAES-OAEP-SHA-256 encrypts under a modulus of `bits` (RFC 8017 §7.1.1). */
export function oaepCapacity(bits: number): number {
  return Math.ceil(bits / 8) - 2 * 32 - 2;
}

/** RSAES-OAEP with SHA-256; the label is the hash of `aad`, so header and context are bound. */
export function oaepSeal(key: KeyObject, plaintext: Buffer, aad: Buffer): Buffer {
  return publicEncrypt(
    { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256", oaepLabel: label(aad) },
    plaintext,
  );
}

/**
 * Opens what oaepSeal made; undefined on any mismatch. Through WebCrypto,
 * whose RSA-OAEP runs on libuv's thread pool: node:crypto's privateDecrypt
 * has no asynchronous form, and held the event loop ~250 µs (RSA-2048) and
 * ~4 ms (RSA-4096) a decryption, against ~30 µs and ~0.1–0.2 ms this way
 * (micro, 32 in flight), for ~80 µs (RSA-2048) more CPU in all.
 */
export async function oaepOpen(key: KeyObject, sealed: Buffer, aad: Buffer): Promise<Buffer | undefined> {
  try {
    const opened = await webcrypto.subtle.decrypt(
      { name: "RSA-OAEP", label: label(aad) },
      await oaepKeyOf(key),
      sealed,
    );
    return Buffer.from(opened);
  } catch {
    return undefined;
  }
}

/** Each RSA private key object's WebCrypto twin for RSA-OAEP decryption, made once (and gone with the object). */
const oaepKeys = new WeakMap<KeyObject, Promise<webcrypto.CryptoKey>>();

function oaepKeyOf(key: KeyObject): Promise<webcrypto.CryptoKey> {
  let made = oaepKeys.get(key);
  if (!made) {
    const der = key.export({ format: "der", type: "pkcs8" });
    made = webcrypto.subtle
      .importKey("pkcs8", der, { name: "RSA-OAEP", hash: "SHA-256" }, false, ["decrypt"])
      .finally(() => der.fill(0));
    made.catch(() => oaepKeys.delete(key));
    oaepKeys.set(key, made);
  }
  return made;
}

function label(aad: Buffer): Buffer {
  return createHash("sha256").update(aad).digest();
}
