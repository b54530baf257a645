// The root key: the one secret the operator supplies, from which every other
// at-rest key is derived. It encrypts broker secrets (signing keys, key
// material) and keys the hashes of API keys and the audit chain.
//
// KeyEncryptionProvider is the seam for replacing the local key with a
// hardware or cloud KMS: callers only seal and open, never see the key.

import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Logger } from "pino";
import { type Config, ConfigError } from "../core/config.js";
import type { KeyEncryptionProvider } from "../core/context.js";
import { type KeyPurpose, keyPurposes } from "../core/key-purposes.js";
import type { RootOfTrust } from "../core/root-of-trust.js";

export type { KeyEncryptionProvider };

const keyBytes = 32;
const version = 1;
const ivBytes = 12;
const tagBytes = 16;

export class RootKey implements KeyEncryptionProvider {
  readonly #key: Buffer;
  readonly #encryptionKey: Buffer;

  constructor(key: Uint8Array) {
    if (key.length !== keyBytes) throw new Error(`root key must be ${keyBytes} bytes`);
    this.#key = Buffer.from(key);
    this.#encryptionKey = this.deriveKey(keyPurposes.rootEncryption);
  }

  deriveKey(purpose: KeyPurpose): Buffer {
    return Buffer.from(hkdfSync("sha256", this.#key, "aegis-root-key", purpose, keyBytes));
  }

  seal(plaintext: Uint8Array, context: string): Buffer {
    const iv = randomBytes(ivBytes);
    const cipher = createCipheriv("aes-256-gcm", this.#encryptionKey, iv);
    cipher.setAAD(Buffer.from(context, "utf8"));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([Buffer.of(version), iv, cipher.getAuthTag(), body]);
  }

  open(sealed: Uint8Array, context: string): Buffer {
    const data = Buffer.from(sealed);
    if (data.length < 1 + ivBytes + tagBytes || data[0] !== version) throw new Error("not a sealed value");
    const iv = data.subarray(1, 1 + ivBytes);
    const tag = data.subarray(1 + ivBytes, 1 + ivBytes + tagBytes);
    const decipher = createDecipheriv("aes-256-gcm", this.#encryptionKey, iv);
    decipher.setAAD(Buffer.from(context, "utf8"));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(data.subarray(1 + ivBytes + tagBytes)), decipher.final()]);
  }

  /** Never let the key reach a log line or an inspected object. */
  toJSON(): string {
    return "[RootKey]";
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return "[RootKey]";
  }
}

/** The local root of trust: key material sealed under the root key, in process. */
export function localRootOfTrust(rootKey: KeyEncryptionProvider): RootOfTrust {
  return {
    kind: "local",
    wrap: async (material, context) => rootKey.seal(material, `kms:${context}`),
    unwrap: async (wrapped, context) => rootKey.open(wrapped, `kms:${context}`),
    close: async () => {},
  };
}

/** Generates a root key in the format AEGIS_ROOT_KEY takes (base64url, 32 bytes). */
export function generateRootKeyText(): string {
  return randomBytes(keyBytes).toString("base64url");
}

/**
 * Finds the root key: AEGIS_ROOT_KEY, then AEGIS_ROOT_KEY_FILE, then (embedded
 * database only) `<dataDir>/root.key`, generated on first start. A shared
 * PostgreSQL never gets a generated key: every instance must use the same
 * one, so the operator has to supply it.
 */
export function loadRootKey(config: Config, log: Logger): RootKey {
  if (config.rootKey !== undefined) return new RootKey(decode(config.rootKey, "AEGIS_ROOT_KEY"));
  if (config.rootKeyFile !== undefined) return new RootKey(readKeyFile(config.rootKeyFile, "AEGIS_ROOT_KEY_FILE", log));
  if (config.databaseUrl !== undefined) {
    throw new ConfigError(
      "AEGIS_ROOT_KEY",
      "required with AEGIS_DATABASE_URL (or set AEGIS_ROOT_KEY_FILE); every broker on the shared database needs the same key. " +
        "Generate one with: aegis root-key generate",
    );
  }
  const file = embeddedRootKeyFile(config);
  if (existsSync(file)) return new RootKey(readKeyFile(file, file, log));
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(file, `${generateRootKeyText()}\n`, { mode: 0o600, flag: "wx" });
  chmodSync(file, 0o600);
  log.warn(
    { file },
    "generated a new root key for the embedded database; back it up, without it the encrypted data cannot be read. " +
      "For production supply AEGIS_ROOT_KEY or AEGIS_ROOT_KEY_FILE from a secret store.",
  );
  return new RootKey(readKeyFile(file, file, log));
}

/** Where the embedded database's generated root key is kept. */
export function embeddedRootKeyFile(config: Pick<Config, "dataDir">): string {
  return path.join(config.dataDir, "root.key");
}

function readKeyFile(file: string, source: string, log: Logger): Buffer {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError(source, `cannot read root key file ${file}: ${(error as NodeJS.ErrnoException).code}`);
  }
  if ((statSync(file).mode & 0o077) !== 0) {
    log.warn({ file }, "root key file is readable by group or others; chmod 600 it");
  }
  return decode(text.trim(), source);
}

function decode(text: string, source: string): Buffer {
  const key = /^[A-Za-z0-9_-]+$/.test(text) ? Buffer.from(text, "base64url") : Buffer.alloc(0);
  if (key.length !== keyBytes) {
    throw new ConfigError(
      source,
      `must be ${keyBytes} random bytes in base64url (43 characters); generate one with: aegis root-key generate`,
    );
  }
  return key;
}
