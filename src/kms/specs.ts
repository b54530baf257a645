// The key specs and algorithms of the KMS, in one table each: what a spec is
// made of, what it may be used for, which algorithms fit it, and how its
// material is generated and turned into a key object. Specs and usages are
// fixed at a key's creation; an operation or algorithm that does not fit
// them is refused before any material is touched.
import {
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  generateKeyPair,
  type KeyObject,
  randomBytes,
} from "node:crypto";
import { promisify } from "node:util";

const generatePair = promisify(generateKeyPair);

export const specNames = [
  "aes_128",
  "aes_192",
  "aes_256",
  "rsa_2048",
  "rsa_3072",
  "rsa_4096",
  "ec_p256",
  "ec_p384",
  "ec_p521",
  "ec_secp256k1",
  "ed25519",
  "ed448",
  "hmac_sha256",
  "hmac_sha384",
  "hmac_sha512",
] as const;
export type SpecName = (typeof specNames)[number];

export const usageNames = ["encrypt_decrypt", "sign_verify", "generate_verify_mac"] as const;
export type UsageName = (typeof usageNames)[number];

type Family = "aes" | "rsa" | "ec" | "ed" | "hmac";

interface SpecInfo {
  readonly family: Family;
  readonly usages: readonly UsageName[];
  /** AES / HMAC key bytes; RSA modulus bits. */
  readonly size?: number;
  /** node:crypto curve (EC) or key type (EdDSA). */
  readonly curve?: string;
  /** The HMAC's hash. */
  readonly hash?: HashName;
}

export type HashName = "sha256" | "sha384" | "sha512";
export const hashBytes: Record<HashName, number> = { sha256: 32, sha384: 48, sha512: 64 };

export const specs: Record<SpecName, SpecInfo> = {
  aes_128: { family: "aes", usages: ["encrypt_decrypt"], size: 16 },
  aes_192: { family: "aes", usages: ["encrypt_decrypt"], size: 24 },
  aes_256: { family: "aes", usages: ["encrypt_decrypt"], size: 32 },
  rsa_2048: { family: "rsa", usages: ["sign_verify", "encrypt_decrypt"], size: 2048 },
  rsa_3072: { family: "rsa", usages: ["sign_verify", "encrypt_decrypt"], size: 3072 },
  rsa_4096: { family: "rsa", usages: ["sign_verify", "encrypt_decrypt"], size: 4096 },
  ec_p256: { family: "ec", usages: ["sign_verify"], curve: "prime256v1" },
  ec_p384: { family: "ec", usages: ["sign_verify"], curve: "secp384r1" },
  ec_p521: { family: "ec", usages: ["sign_verify"], curve: "secp521r1" },
  ec_secp256k1: { family: "ec", usages: ["sign_verify"], curve: "secp256k1" },
  ed25519: { family: "ed", usages: ["sign_verify"], curve: "ed25519" },
  ed448: { family: "ed", usages: ["sign_verify"], curve: "ed448" },
  hmac_sha256: { family: "hmac", usages: ["generate_verify_mac"], size: 32, hash: "sha256" },
  hmac_sha384: { family: "hmac", usages: ["generate_verify_mac"], size: 48, hash: "sha384" },
  hmac_sha512: { family: "hmac", usages: ["generate_verify_mac"], size: 64, hash: "sha512" },
};

export const signingAlgorithms = [
  "rsassa_pss_sha_256",
  "rsassa_pss_sha_384",
  "rsassa_pss_sha_512",
  "rsassa_pkcs1_v1_5_sha_256",
  "rsassa_pkcs1_v1_5_sha_384",
  "rsassa_pkcs1_v1_5_sha_512",
  "ecdsa_sha_256",
  "ecdsa_sha_384",
  "ecdsa_sha_512",
  "ed25519",
  "ed448",
] as const;
export type SigningAlgorithm = (typeof signingAlgorithms)[number];

export const encryptionAlgorithms = ["aes_gcm", "rsaes_oaep_sha_256"] as const;
export type EncryptionAlgorithm = (typeof encryptionAlgorithms)[number];

export const macAlgorithms = ["hmac_sha_256", "hmac_sha_384", "hmac_sha_512"] as const;
export type MacAlgorithm = (typeof macAlgorithms)[number];

export type AlgorithmName = SigningAlgorithm | EncryptionAlgorithm | MacAlgorithm;

/** What a signing algorithm needs of a key, and how it signs. */
export interface SigningScheme {
  readonly family: "rsa" | "ec" | "ed";
  readonly hash?: HashName;
  readonly padding?: "pss" | "pkcs1";
  /** EdDSA: only this spec. */
  readonly spec?: SpecName;
}

export const signingSchemes: Record<SigningAlgorithm, SigningScheme> = {
  rsassa_pss_sha_256: { family: "rsa", hash: "sha256", padding: "pss" },
  rsassa_pss_sha_384: { family: "rsa", hash: "sha384", padding: "pss" },
  rsassa_pss_sha_512: { family: "rsa", hash: "sha512", padding: "pss" },
  rsassa_pkcs1_v1_5_sha_256: { family: "rsa", hash: "sha256", padding: "pkcs1" },
  rsassa_pkcs1_v1_5_sha_384: { family: "rsa", hash: "sha384", padding: "pkcs1" },
  rsassa_pkcs1_v1_5_sha_512: { family: "rsa", hash: "sha512", padding: "pkcs1" },
  ecdsa_sha_256: { family: "ec", hash: "sha256" },
  ecdsa_sha_384: { family: "ec", hash: "sha384" },
  ecdsa_sha_512: { family: "ec", hash: "sha512" },
  ed25519: { family: "ed", spec: "ed25519" },
  ed448: { family: "ed", spec: "ed448" },
};

export const macHashes: Record<MacAlgorithm, HashName> = {
  hmac_sha_256: "sha256",
  hmac_sha_384: "sha384",
  hmac_sha_512: "sha512",
};

/** Whether `algorithm` can be used with a key of `spec`. */
export function algorithmFits(spec: SpecName, algorithm: AlgorithmName): boolean {
  const info = specs[spec];
  if (algorithm in signingSchemes) {
    const scheme = signingSchemes[algorithm as SigningAlgorithm];
    return scheme.family === info.family && (scheme.spec === undefined || scheme.spec === spec);
  }
  if (algorithm === "aes_gcm") return info.family === "aes";
  if (algorithm === "rsaes_oaep_sha_256") return info.family === "rsa";
  return info.family === "hmac" && macHashes[algorithm as MacAlgorithm] === info.hash;
}

/** The usage a spec implies when the request names none; undefined when it must be named (RSA). */
export function impliedUsage(spec: SpecName): UsageName | undefined {
  const usages = specs[spec].usages;
  return usages.length === 1 ? usages[0] : undefined;
}

export interface GeneratedMaterial {
  /** Raw bytes (AES, HMAC) or PKCS#8 DER (private keys): the secret, to wrap at once. */
  readonly material: Buffer;
  /** SubjectPublicKeyInfo PEM of asymmetric keys. */
  readonly publicKeyPem?: string;
}

/** Fresh material for a version of a key of `spec` (RSA generation runs off the event loop). */
export async function generateMaterial(spec: SpecName): Promise<GeneratedMaterial> {
  const info = specs[spec];
  if (info.family === "aes" || info.family === "hmac") return { material: randomBytes(info.size as number) };
  const pair =
    info.family === "rsa"
      ? await generatePair("rsa", { modulusLength: info.size as number })
      : info.family === "ec"
        ? await generatePair("ec", { namedCurve: info.curve as string })
        : await generatePair(info.curve as "ed25519");
  return {
    material: pair.privateKey.export({ format: "der", type: "pkcs8" }),
    publicKeyPem: pair.publicKey.export({ format: "pem", type: "spki" }).toString(),
  };
}

/** The key object for unwrapped material: secret for AES/HMAC, private otherwise. */
export function keyObjectOf(spec: SpecName, material: Uint8Array): KeyObject {
  const family = specs[spec].family;
  if (family === "aes" || family === "hmac") return createSecretKey(material);
  return createPrivateKey({ key: Buffer.from(material), format: "der", type: "pkcs8" });
}

export function publicKeyOf(pem: string): KeyObject {
  return createPublicKey(pem);
}
