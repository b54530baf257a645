// The PKCS#11 root of trust: the KMS's key material is wrapped by an AES-256
// key that lives in a token (an HSM, or SoftHSM2 for a trial) and never leaves
// it. The only file that calls pkcs11js.
//
// Mechanism: CKM_AES_GCM through C_Encrypt/C_Decrypt, with a fresh 96-bit IV
// from node's CSPRNG per wrap, a 128-bit tag and the context (with the header)
// as AAD, so material unwraps only under the context it was wrapped for and
// any change to the bytes is refused. Not C_WrapKey/C_UnwrapKey: those take
// and make key *objects* in the token, while the KMS's material is bytes in
// the broker (HMAC keys, Ed25519/EC/RSA private keys in its own encoding),
// and CKM_AES_KEY_WRAP(_PAD) would bind no context. The IV comes from node
// rather than C_GenerateRandom: a random 96-bit GCM IV needs to be unique,
// which node's CSPRNG gives without a second round trip to the token per wrap
// (NIST SP 800-38D §8.3 bounds random IVs at 2^32 wraps per key, far beyond
// how often key material is wrapped).
//
// Output (self-describing, versioned): 0x50 ('P'), format 0x01 (AES-256-GCM,
// 12-byte IV, 16-byte tag), IV, ciphertext || tag. The local root key's
// output starts with 0x01, so neither mistakes the other's for its own.
//
// Sessions: a PKCS#11 session runs one operation at a time, so a small pool
// of sessions is opened at start (one login covers them all: login state is
// per application and token) and each wrap holds one session from
// C_EncryptInit to the end of C_Encrypt; the encrypt itself runs on libuv's
// thread pool (pkcs11js's *Async calls), with the module initialised for OS
// locking. close() waits for calls in flight, logs out, closes the sessions
// and finalises the module. Errors name the module, token, key label and the
// PKCS#11 return code; never the PIN.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Logger } from "pino";
import type * as Pkcs11 from "pkcs11js";
import { ConfigError, type Pkcs11Config } from "../core/config.js";
import type { RootOfTrust } from "../core/root-of-trust.js";

type Handle = Pkcs11.Handle;
type Binding = typeof Pkcs11;

const magic = 0x50;
const formatAesGcm = 0x01;
const headerBytes = 2;
const ivBytes = 12;
const tagBytes = 16;
const keyBytes = 32;

/** What the PKCS#11 root of trust was opened on, for the start log (never the PIN). */
export interface Pkcs11RootOfTrust extends RootOfTrust {
  readonly kind: "pkcs11";
  readonly description: {
    readonly module: string;
    readonly hsmToken: string;
    readonly keyLabel: string;
    readonly sessions: number;
  };
}

/**
 * Opens the token named in `config`, logs in, finds the AES key (creating it
 * only when `config.createKey` says so) and checks that it can never leave
 * the token. Throws a ConfigError naming the variable to fix.
 */
export async function openPkcs11RootOfTrust(config: Pkcs11Config, log: Logger): Promise<Pkcs11RootOfTrust> {
  const token = await openToken(config);
  try {
    let key = findKey(token, config);
    if (key === undefined && config.createKey) {
      key = generateKey(token, config.keyLabel);
      log.warn(
        { hsmToken: token.name, keyLabel: config.keyLabel },
        "created a new AES-256 root-of-trust key in the token (AEGIS_PKCS11_CREATE_KEY); back the token up",
      );
    }
    if (key === undefined) {
      throw new ConfigError(
        "AEGIS_PKCS11_KEY_LABEL",
        `token ${token.name} has no AES secret key labelled "${config.keyLabel}"; ` +
          "create it once with AEGIS_PKCS11_CREATE_KEY=true (or the HSM's own tools)",
      );
    }
    checkKey(token, key, config.keyLabel, log);
    const pool = new SessionPool(token);
    return rootOfTrust(token, key, pool, config);
  } catch (error) {
    token.close();
    throw error;
  }
}

/**
 * Creates the AES key in the token if it has none by that label (`aegis hsm
 * init-key`, a trial's set-up, tests), and checks the key either way.
 */
export async function createPkcs11Key(config: Pkcs11Config): Promise<{ created: boolean; hsmToken: string }> {
  const token = await openToken({ ...config, sessions: 1 });
  try {
    let key = findKey(token, config);
    const created = key === undefined;
    key ??= generateKey(token, config.keyLabel);
    checkKey(token, key, config.keyLabel, undefined);
    return { created, hsmToken: token.name };
  } finally {
    token.close();
  }
}

function rootOfTrust(token: Token, key: Handle, pool: SessionPool, config: Pkcs11Config): Pkcs11RootOfTrust {
  const { pkcs11 } = token;
  const header = Buffer.of(magic, formatAesGcm);
  const mechanism = (iv: Buffer, context: string): Pkcs11.Mechanism => {
    const parameter: Pkcs11.AesGCM = {
      type: token.binding.CK_PARAMS_AES_GCM_v240,
      iv,
      ivBits: ivBytes * 8,
      aad: Buffer.concat([header, Buffer.from(`kms:${context}`, "utf8")]),
      tagBits: tagBytes * 8,
    };
    return { mechanism: token.binding.CKM_AES_GCM, parameter };
  };
  return {
    kind: "pkcs11",
    description: { module: config.module, hsmToken: token.name, keyLabel: config.keyLabel, sessions: config.sessions },
    async wrap(material, context) {
      // Key material is never empty, and some modules (SoftHSM) refuse an
      // empty input buffer as CKR_ARGUMENTS_BAD.
      if (material.length === 0) throw new Error("no key material to wrap");
      const iv = randomBytes(ivBytes);
      const sealed = await pool.use(async (session) => {
        pkcs11.C_EncryptInit(session, mechanism(iv, context), key);
        return pkcs11.C_EncryptAsync(session, Buffer.from(material), Buffer.alloc(material.length + tagBytes));
      });
      return Buffer.concat([header, iv, sealed]);
    },
    async unwrap(wrapped, context) {
      const data = Buffer.from(wrapped);
      if (data.length < headerBytes + ivBytes + tagBytes || data[0] !== magic || data[1] !== formatAesGcm) {
        throw new Error("not key material wrapped by the PKCS#11 root of trust");
      }
      const iv = data.subarray(headerBytes, headerBytes + ivBytes);
      const body = data.subarray(headerBytes + ivBytes);
      try {
        return await pool.use(async (session) => {
          pkcs11.C_DecryptInit(session, mechanism(iv, context), key);
          return pkcs11.C_DecryptAsync(session, body, Buffer.alloc(body.length));
        });
      } catch (error) {
        if (error instanceof RootOfTrustClosedError) throw error;
        // SoftHSM reports a failed GCM tag as CKR_GENERAL_ERROR, others as
        // CKR_ENCRYPTED_DATA_INVALID: both mean the bytes or context differ.
        throw new Error(
          `the PKCS#11 root of trust refused to unwrap (${codeOf(error)}): wrong context or altered data`,
        );
      }
    },
    async close() {
      await pool.close();
      token.close();
    },
  };
}

/** A token opened and logged in, with its sessions; close() undoes all of it. */
interface Token {
  readonly binding: Binding;
  readonly pkcs11: Pkcs11.PKCS11;
  /** `"label" (slot N)`, for messages. */
  readonly name: string;
  readonly slot: Handle;
  readonly sessions: Handle[];
  close(): void;
}

/**
 * Tokens opened by this process, by module and slot: a second root of trust
 * on the same token would share (and its close() would end) the first one's
 * login, so it is refused. Modules initialised by this process, with how many
 * tokens use each: C_Finalize ends every session of the process.
 */
const openTokens = new Set<string>();
const modules = new Map<string, { pkcs11: Pkcs11.PKCS11; users: number; finalize: boolean }>();

async function openToken(config: Pkcs11Config): Promise<Token> {
  const binding = await loadBinding();
  const pin = readPin(config);
  const module = initializeModule(binding, config.module);
  const { pkcs11 } = module;
  let slot: Handle;
  let name: string;
  try {
    ({ slot, name } = findSlot(binding, pkcs11, config));
  } catch (error) {
    releaseModule(config.module);
    throw error;
  }
  const tokenKey = `${config.module}#${slot.toString("hex")}`;
  if (openTokens.has(tokenKey)) {
    releaseModule(config.module);
    throw new ConfigError(
      config.tokenLabel !== undefined ? "AEGIS_PKCS11_TOKEN_LABEL" : "AEGIS_PKCS11_SLOT",
      `token ${name} is already open in this process`,
    );
  }
  const sessions: Handle[] = [];
  const close = () => {
    if (sessions.length > 0) {
      try {
        pkcs11.C_Logout(sessions[0] as Handle);
      } catch {
        // Not logged in (the login failed) or the token is gone: nothing to undo.
      }
    }
    for (const session of sessions) {
      try {
        pkcs11.C_CloseSession(session);
      } catch {
        // Already closed with the token.
      }
    }
    sessions.length = 0;
    openTokens.delete(tokenKey);
    releaseModule(config.module);
  };
  openTokens.add(tokenKey);
  try {
    for (let i = 0; i < config.sessions; i++) sessions.push(pkcs11.C_OpenSession(slot, binding.CKF_SERIAL_SESSION));
    login(binding, pkcs11, sessions[0] as Handle, pin, name, config);
  } catch (error) {
    close();
    throw error instanceof ConfigError ? error : new Error(`PKCS#11 token ${name}: ${codeOf(error)}`);
  }
  return { binding, pkcs11, name, slot, sessions, close };
}

async function loadBinding(): Promise<Binding> {
  // Loaded only when the PKCS#11 root of trust is chosen, so a broker on the
  // local root key never needs the native addon.
  try {
    return (await import("pkcs11js")).default as unknown as Binding;
  } catch (error) {
    throw new ConfigError(
      "AEGIS_ROOT_OF_TRUST",
      `pkcs11 needs the pkcs11js native addon, which did not load (run npm ci with a C++ toolchain): ${(error as Error).message}`,
    );
  }
}

function readPin(config: Pkcs11Config): string {
  if (config.pin !== undefined) return config.pin;
  const file = config.pinFile as string;
  try {
    return readFileSync(file, "utf8").replace(/\r?\n$/, "");
  } catch (error) {
    throw new ConfigError("AEGIS_PKCS11_PIN_FILE", `cannot read ${file}: ${(error as NodeJS.ErrnoException).code}`);
  }
}

function initializeModule(binding: Binding, path: string): { pkcs11: Pkcs11.PKCS11 } {
  const known = modules.get(path);
  if (known) {
    known.users++;
    return known;
  }
  const pkcs11 = new binding.PKCS11();
  try {
    pkcs11.load(path);
  } catch (error) {
    throw new ConfigError("AEGIS_PKCS11_MODULE", `cannot load the PKCS#11 module ${path}: ${(error as Error).message}`);
  }
  let finalize = true;
  try {
    pkcs11.C_Initialize({ flags: binding.CKF_OS_LOCKING_OK });
  } catch (error) {
    // Initialised by other code in this process (which then owns C_Finalize).
    if (codeOf(error) !== "CKR_CRYPTOKI_ALREADY_INITIALIZED") {
      pkcs11.close();
      throw new ConfigError("AEGIS_PKCS11_MODULE", `the PKCS#11 module ${path} failed to initialise: ${codeOf(error)}`);
    }
    finalize = false;
  }
  const entry = { pkcs11, users: 1, finalize };
  modules.set(path, entry);
  return entry;
}

function releaseModule(path: string): void {
  const entry = modules.get(path);
  if (!entry || --entry.users > 0) return;
  modules.delete(path);
  try {
    if (entry.finalize) entry.pkcs11.C_Finalize();
  } finally {
    entry.pkcs11.close();
  }
}

function findSlot(binding: Binding, pkcs11: Pkcs11.PKCS11, config: Pkcs11Config): { slot: Handle; name: string } {
  const tokens = pkcs11.C_GetSlotList(true).map((slot) => {
    const info = pkcs11.C_GetTokenInfo(slot);
    return {
      slot,
      id: slotId(slot),
      label: info.label.trimEnd(),
      initialized: (info.flags & binding.CKF_TOKEN_INITIALIZED) !== 0,
    };
  });
  const found =
    config.tokenLabel !== undefined
      ? tokens.find((token) => token.initialized && token.label === config.tokenLabel)
      : tokens.find((token) => token.id === BigInt(config.slot as number));
  if (!found) {
    const present = tokens.filter((token) => token.initialized).map((token) => `"${token.label}" (slot ${token.id})`);
    const wanted = config.tokenLabel !== undefined ? `labelled "${config.tokenLabel}"` : `in slot ${config.slot}`;
    throw new ConfigError(
      config.tokenLabel !== undefined ? "AEGIS_PKCS11_TOKEN_LABEL" : "AEGIS_PKCS11_SLOT",
      `no initialised token ${wanted} in ${config.module} (present: ${present.join(", ") || "none"})`,
    );
  }
  return { slot: found.slot, name: `"${found.label}" (slot ${found.id})` };
}

function slotId(handle: Handle): bigint {
  return handle.length >= 8 ? handle.readBigUInt64LE(0) : BigInt(handle.readUInt32LE(0));
}

function login(
  binding: Binding,
  pkcs11: Pkcs11.PKCS11,
  session: Handle,
  pin: string,
  name: string,
  config: Pkcs11Config,
): void {
  const variable = config.pin !== undefined ? "AEGIS_PKCS11_PIN" : "AEGIS_PKCS11_PIN_FILE";
  try {
    pkcs11.C_Login(session, binding.CKU_USER, pin);
  } catch (error) {
    const code = codeOf(error);
    const why: Record<string, string> = {
      CKR_PIN_INCORRECT: "the token refused the user PIN",
      CKR_PIN_LOCKED: "the user PIN is locked (too many wrong attempts); the token's SO must reset it",
      CKR_PIN_LEN_RANGE: "the user PIN has a length the token does not accept",
      CKR_USER_PIN_NOT_INITIALIZED: "the token's user PIN was never set",
      CKR_USER_ALREADY_LOGGED_IN: "other code in this process is already logged in to the token",
    };
    // The PKCS#11 error carries only the function and return code; it is not
    // chained as the cause all the same, so nothing near the PIN is kept.
    throw new ConfigError(variable, `login to token ${name} failed: ${why[code] ?? "refused"} (${code})`);
  }
}

function findKey(token: Token, config: Pkcs11Config): Handle | undefined {
  const { binding, pkcs11 } = token;
  const session = token.sessions[0] as Handle;
  pkcs11.C_FindObjectsInit(session, [
    { type: binding.CKA_CLASS, value: binding.CKO_SECRET_KEY },
    { type: binding.CKA_KEY_TYPE, value: binding.CKK_AES },
    { type: binding.CKA_LABEL, value: config.keyLabel },
  ]);
  let found: Handle[];
  try {
    found = pkcs11.C_FindObjects(session, 2);
  } finally {
    pkcs11.C_FindObjectsFinal(session);
  }
  if (found.length > 1) {
    throw new ConfigError(
      "AEGIS_PKCS11_KEY_LABEL",
      `token ${token.name} has several AES keys labelled "${config.keyLabel}"; labels must pick one key`,
    );
  }
  return found[0];
}

/** An AES-256 token key that is sensitive, never extractable, and only encrypts and decrypts. */
function generateKey(token: Token, label: string): Handle {
  const { binding, pkcs11 } = token;
  // Creating a token object needs a read-write session; the pool's are read-only.
  const session = pkcs11.C_OpenSession(token.slot, binding.CKF_SERIAL_SESSION | binding.CKF_RW_SESSION);
  try {
    return pkcs11.C_GenerateKey(session, { mechanism: binding.CKM_AES_KEY_GEN }, [
      { type: binding.CKA_CLASS, value: binding.CKO_SECRET_KEY },
      { type: binding.CKA_KEY_TYPE, value: binding.CKK_AES },
      { type: binding.CKA_VALUE_LEN, value: keyBytes },
      { type: binding.CKA_LABEL, value: label },
      { type: binding.CKA_TOKEN, value: true },
      { type: binding.CKA_PRIVATE, value: true },
      { type: binding.CKA_SENSITIVE, value: true },
      { type: binding.CKA_EXTRACTABLE, value: false },
      { type: binding.CKA_ENCRYPT, value: true },
      { type: binding.CKA_DECRYPT, value: true },
      { type: binding.CKA_WRAP, value: false },
      { type: binding.CKA_UNWRAP, value: false },
      { type: binding.CKA_SIGN, value: false },
      { type: binding.CKA_VERIFY, value: false },
      { type: binding.CKA_DERIVE, value: false },
    ]);
  } finally {
    pkcs11.C_CloseSession(session);
  }
}

/** Refuses a key the token would let out, or one that cannot do the job. */
function checkKey(token: Token, key: Handle, label: string, log: Logger | undefined): void {
  const { binding, pkcs11 } = token;
  const wanted = [
    binding.CKA_SENSITIVE,
    binding.CKA_EXTRACTABLE,
    binding.CKA_ENCRYPT,
    binding.CKA_DECRYPT,
    binding.CKA_VALUE_LEN,
    binding.CKA_ALWAYS_SENSITIVE,
    binding.CKA_NEVER_EXTRACTABLE,
  ];
  const values = pkcs11.C_GetAttributeValue(
    token.sessions[0] as Handle,
    key,
    wanted.map((type) => ({ type })),
  );
  const read = (type: number): Buffer => values.find((attribute) => attribute.type === type)?.value as Buffer;
  const flag = (type: number): boolean => read(type)?.[0] === 1;
  const problems = [
    !flag(binding.CKA_SENSITIVE) && "it is not CKA_SENSITIVE",
    flag(binding.CKA_EXTRACTABLE) && "it is CKA_EXTRACTABLE",
    !flag(binding.CKA_ENCRYPT) && "it lacks CKA_ENCRYPT",
    !flag(binding.CKA_DECRYPT) && "it lacks CKA_DECRYPT",
    read(binding.CKA_VALUE_LEN)?.readUInt32LE(0) !== keyBytes && "it is not 256 bits",
  ].filter((problem): problem is string => typeof problem === "string");
  if (problems.length > 0) {
    throw new ConfigError(
      "AEGIS_PKCS11_KEY_LABEL",
      `the key "${label}" on token ${token.name} cannot be the root of trust: ${problems.join(", ")}`,
    );
  }
  if (!flag(binding.CKA_ALWAYS_SENSITIVE) || !flag(binding.CKA_NEVER_EXTRACTABLE)) {
    log?.warn(
      { hsmToken: token.name, keyLabel: label },
      "the root-of-trust key was once extractable or not sensitive (imported or changed): copies of it may exist outside the token",
    );
  }
}

class RootOfTrustClosedError extends Error {
  constructor() {
    super("the PKCS#11 root of trust is closed");
  }
}

/**
 * Hands each call a session of its own (a session runs one operation at a
 * time); calls beyond the pool wait in order. A session whose operation
 * failed is replaced: the module may leave the operation active after an
 * error (SoftHSM does for CKR_ARGUMENTS_BAD), and PKCS#11 2.40 has no way to
 * cancel it. The new session opens before the old one closes, since closing
 * a process's last session logs it out. close() refuses new calls and
 * resolves when every session is back.
 */
class SessionPool {
  readonly #token: Token;
  readonly #idle: Handle[];
  readonly #waiting: ((session: Handle) => void)[] = [];
  #closed = false;
  #drained: (() => void) | undefined;

  constructor(token: Token) {
    this.#token = token;
    this.#idle = [...token.sessions];
  }

  async use<T>(operation: (session: Handle) => Promise<T>): Promise<T> {
    if (this.#closed) throw new RootOfTrustClosedError();
    let session = this.#idle.pop() ?? (await new Promise<Handle>((resolve) => this.#waiting.push(resolve)));
    try {
      return await operation(session);
    } catch (error) {
      session = this.#replace(session);
      throw error;
    } finally {
      const next = this.#waiting.shift();
      if (next) next(session);
      else {
        this.#idle.push(session);
        if (this.#idle.length === this.#token.sessions.length) this.#drained?.();
      }
    }
  }

  #replace(session: Handle): Handle {
    const { binding, pkcs11, sessions, slot } = this.#token;
    let fresh: Handle;
    try {
      fresh = pkcs11.C_OpenSession(slot, binding.CKF_SERIAL_SESSION);
    } catch {
      return session; // The token is gone; the next call reports it.
    }
    sessions[sessions.indexOf(session)] = fresh;
    try {
      pkcs11.C_CloseSession(session);
    } catch {
      // Already invalid: replacing it was the point.
    }
    return fresh;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#idle.length === this.#token.sessions.length) return;
    await new Promise<void>((resolve) => {
      this.#drained = resolve;
    });
  }
}

function codeOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return /^CKR_[A-Z0-9_]+/.exec(message)?.[0] ?? message.split("\n")[0] ?? "unknown error";
}
