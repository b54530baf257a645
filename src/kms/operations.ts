// The cryptographic operations of the KMS, each an ordered table of checks
// and then the primitive:
//
//   1. the caller's grant covers `<action>:key:<id>` (before any lookup);
//   2. the key exists in the caller's tenant (else not found);
//   3. the key's policy: a DPoP-bound credential when it asks for one;
//   4. the key's state allows the operation (lifecycle.ts);
//   5. the key's usage and spec fit the operation and the named algorithm;
//   6. the input's size and shape;
//   then the primitive, with the version the envelope names (decrypt,
//   verify, unwrap) or the current one (everything that makes something).
//
// Decryption and unwrapping failures of any kind (another context, a
// flipped byte, another key's or version's ciphertext, a truncation) say
// only "decryption failed"; which part differed goes to the audit event.
//
// The version an envelope's header names is the caller's word (four bytes,
// up to 2^32 - 1, where answers hold an int32): an answer names it only when
// it is a usable version of this key (`usableVersion`), an audit target only
// when the key has it (`versionOf`); the reason says what was sent.
//
// A batch lets the event loop run between its items (`eachInTurn`): an
// RSA-4096 or P-521 signature of a digest is made in place and takes
// milliseconds, and 100 of them in one go held every tenant's calls.
import { randomBytes } from "node:crypto";
import type { KmsKey } from "../../gen/prisma/client.js";
import type { AuditBase } from "../core/audit.js";
import type { Caller } from "../core/caller.js";
import { DomainError, invalidArgument, permissionDenied } from "../core/errors/domain-error.js";
import { sameSecret } from "../crypto/constant-time.js";
import { isId } from "../protocol/ids.js";
import { canonicalContext, decodeEnvelope, type EnvelopeKind, encodeHeader } from "./envelope.js";
import { auditTarget, describe, type KeyOpMetrics, type OpNote, observed } from "./key-audit.js";
import {
  aesGcmOpen,
  aesGcmSeal,
  hmac,
  oaepCapacity,
  oaepOpen,
  oaepSeal,
  type SignInput,
  signWith,
  verifyWith,
} from "./key-crypto.js";
import type { KeyStore } from "./key-store.js";
import { assertKeyRight, type KmsCtx, specMismatch } from "./keys.js";
import { assertUsable, effectiveState, type OperationClass, upper } from "./lifecycle.js";
import {
  type AlgorithmName,
  algorithmFits,
  type EncryptionAlgorithm,
  hashBytes,
  type MacAlgorithm,
  macHashes,
  type SigningAlgorithm,
  type SpecName,
  signingSchemes,
  specs,
  type UsageName,
} from "./specs.js";

export type Context = Readonly<Record<string, string>>;

export interface Signed {
  readonly signature: Buffer;
  readonly rawSignature: Buffer;
  readonly version: number;
}

export interface Sealed {
  readonly ciphertext: Buffer;
  readonly version: number;
}

export interface Opened {
  readonly plaintext: Buffer;
  readonly version: number;
}

/** `version` when `key` has it (1 to current, usable or not), else undefined. */
function versionOf(key: KmsKey, version: number): number | undefined {
  return version >= 1 && version <= key.currentVersion ? version : undefined;
}

/** Whether `version` of `key` may still be used to decrypt or verify. */
function usableVersion(key: KmsKey, version: number): boolean {
  return version >= key.minDecryptionVersion && version <= key.currentVersion;
}

/**
 * `work` over `items` in order, one event-loop turn between items, so the
 * calls that arrived meanwhile are served (a turn costs microseconds; an
 * item made in place, up to ~20 ms).
 */
async function eachInTurn<T, R>(items: readonly T[], work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (const [i, item] of items.entries()) {
    if (i > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    out.push(await work(item, i));
  }
  return out;
}

function failed(kind: EnvelopeKind, detail: string): DomainError {
  return kind === "wrappedKey"
    ? new DomainError("invalid_argument", "UNWRAP_FAILED", "unwrap failed", { detail })
    : new DomainError("invalid_argument", "DECRYPTION_FAILED", "decryption failed", { detail });
}

export class KeyOperations {
  constructor(
    private readonly ctx: KmsCtx,
    private readonly store: KeyStore,
    private readonly metrics: KeyOpMetrics,
  ) {}

  #run<T>(base: AuditBase, action: string, operation: string, keyId: string, work: (note: OpNote) => Promise<T>) {
    return observed(this.ctx, this.metrics, { base, action, operation, keyId }, work);
  }

  /** Checks 1 to 5 for `keyId`; the key row as it is now. */
  async #usableKey(
    caller: Caller,
    action: string,
    keyId: string,
    kind: OperationClass,
    operation: string,
    usage: UsageName | undefined,
    algorithm: AlgorithmName | undefined,
    note: OpNote,
  ): Promise<KmsKey> {
    if (algorithm) note.algorithm = algorithm;
    assertKeyRight(caller, action, keyId);
    const key = await this.store.key(caller.tenantId, keyId);
    note.version = key.currentVersion;
    if (key.requireDpop && caller.dpopJkt === undefined) {
      throw permissionDenied(
        "KEY_REQUIRES_DPOP",
        "this key is used only with a DPoP-bound credential and a proof on the call",
      );
    }
    assertUsable(effectiveState(key, this.ctx.clock.now()), kind, operation);
    if (usage && key.usage !== usage) throw specMismatch(key, `operation ${operation}`);
    if (algorithm && !algorithmFits(key.spec as SpecName, algorithm)) {
      throw specMismatch(key, `algorithm ${upper(algorithm)}`);
    }
    return key;
  }

  // -- signatures --------------------------------------------------------

  #checkSignInput(algorithm: SigningAlgorithm, input: SignInput, field: string): void {
    const scheme = signingSchemes[algorithm];
    if ("digest" in input) {
      if (!scheme.hash) {
        throw invalidArgument([{ field, description: `${upper(algorithm)} signs messages only, not digests` }]);
      }
      if (input.digest.length !== hashBytes[scheme.hash]) {
        throw invalidArgument([
          {
            field,
            description: `a ${scheme.hash} digest is ${hashBytes[scheme.hash]} bytes, not ${input.digest.length}`,
          },
        ]);
      }
    } else if (input.message.length > 4096) {
      throw invalidArgument([{ field, description: "a message to sign is at most 4096 bytes; sign its digest" }]);
    }
  }

  async #signOne(key: KmsKey, algorithm: SigningAlgorithm, input: SignInput): Promise<Signed> {
    const version = key.currentVersion;
    const secret = await this.store.secret(key, version);
    const raw = await signWith(signingSchemes[algorithm], secret, input);
    const header = encodeHeader({ kind: "signature", algorithm, version, keyId: key.id });
    return { signature: Buffer.concat([header, raw]), rawSignature: raw, version };
  }

  sign(caller: Caller, base: AuditBase, keyId: string, algorithm: SigningAlgorithm, input: SignInput) {
    return this.#run(base, "kms.sign", "sign", keyId, async (note) => {
      const key = await this.#usableKey(caller, "kms.sign", keyId, "produce", "sign", "sign_verify", algorithm, note);
      this.#checkSignInput(algorithm, input, "input");
      note.detail = "digest" in input ? "input=digest" : "input=message";
      return this.#signOne(key, algorithm, input);
    });
  }

  batchSign(caller: Caller, base: AuditBase, keyId: string, algorithm: SigningAlgorithm, inputs: SignInput[]) {
    return this.#run(base, "kms.sign", "batch_sign", keyId, async (note) => {
      const key = await this.#usableKey(caller, "kms.sign", keyId, "produce", "sign", "sign_verify", algorithm, note);
      for (const [i, input] of inputs.entries()) this.#checkSignInput(algorithm, input, `inputs[${i}]`);
      note.detail = `items=${inputs.length}`;
      return eachInTurn(inputs, (input): Promise<Signed> => this.#signOne(key, algorithm, input));
    });
  }

  verify(
    caller: Caller,
    base: AuditBase,
    keyId: string,
    algorithm: SigningAlgorithm,
    input: SignInput,
    signature: Uint8Array,
  ) {
    return this.#run(base, "kms.verify", "verify", keyId, async (note) => {
      const key = await this.#usableKey(
        caller,
        "kms.verify",
        keyId,
        "consume",
        "verify",
        "sign_verify",
        algorithm,
        note,
      );
      this.#checkSignInput(algorithm, input, "input");
      const envelope = decodeEnvelope(signature, "signature");
      // The answer names the signature's version only when it is a usable version of this key.
      const named = envelope && envelope.keyId === key.id && usableVersion(key, envelope.version);
      const invalid = (why: string) => {
        note.failure = "invalid_signature";
        note.detail = why;
        return { valid: false, version: named ? envelope.version : 0 };
      };
      if (!envelope || envelope.keyId !== key.id) return invalid("not a signature of this key");
      note.version = versionOf(key, envelope.version) ?? note.version;
      if (envelope.algorithm !== algorithm) return invalid(`made with ${envelope.algorithm}`);
      if (!usableVersion(key, envelope.version)) return invalid(`version ${envelope.version} not usable`);
      const { object } = await this.store.publicKey(key, envelope.version);
      if (!verifyWith(signingSchemes[algorithm], object, input, envelope.payload)) return invalid("signature mismatch");
      return { valid: true, version: envelope.version };
    });
  }

  // -- MACs --------------------------------------------------------------

  generateMac(caller: Caller, base: AuditBase, keyId: string, algorithm: MacAlgorithm, message: Buffer) {
    return this.#run(base, "kms.mac.generate", "generate_mac", keyId, async (note) => {
      const key = await this.#usableKey(
        caller,
        "kms.mac.generate",
        keyId,
        "produce",
        "generate MAC",
        "generate_verify_mac",
        algorithm,
        note,
      );
      const version = key.currentVersion;
      const secret = await this.store.secret(key, version);
      const header = encodeHeader({ kind: "mac", algorithm, version, keyId: key.id });
      return { mac: Buffer.concat([header, hmac(macHashes[algorithm], secret, message)]), version };
    });
  }

  verifyMac(caller: Caller, base: AuditBase, keyId: string, algorithm: MacAlgorithm, message: Buffer, mac: Uint8Array) {
    return this.#run(base, "kms.mac.verify", "verify_mac", keyId, async (note) => {
      const key = await this.#usableKey(
        caller,
        "kms.mac.verify",
        keyId,
        "consume",
        "verify MAC",
        "generate_verify_mac",
        algorithm,
        note,
      );
      const envelope = decodeEnvelope(mac, "mac");
      const invalid = (why: string) => {
        note.failure = "invalid_mac";
        note.detail = why;
        return { valid: false };
      };
      if (!envelope || envelope.keyId !== key.id || envelope.algorithm !== algorithm)
        return invalid("not a MAC of this key");
      note.version = versionOf(key, envelope.version) ?? note.version;
      if (!usableVersion(key, envelope.version)) return invalid(`version ${envelope.version} not usable`);
      const secret = await this.store.secret(key, envelope.version);
      if (!sameSecret(hmac(macHashes[algorithm], secret, message), envelope.payload)) return invalid("MAC mismatch");
      return { valid: true };
    });
  }

  // -- encryption ---------------------------------------------------------

  /** Seals `plaintext` as an envelope of `kind` with the current version. */
  async #seal(
    key: KmsKey,
    kind: EnvelopeKind,
    algorithm: EncryptionAlgorithm,
    plaintext: Buffer,
    context: Context,
    field: string,
  ): Promise<Sealed> {
    const version = key.currentVersion;
    const header = encodeHeader({ kind, algorithm, version, keyId: key.id });
    const aad = Buffer.concat([header, canonicalContext(context)]);
    let payload: Buffer;
    if (algorithm === "aes_gcm") {
      payload = aesGcmSeal(await this.store.secret(key, version), plaintext, aad);
    } else {
      const capacity = oaepCapacity(specs[key.spec as SpecName].size as number);
      if (plaintext.length > capacity) {
        throw invalidArgument([
          { field, description: `RSAES-OAEP-SHA-256 with this key takes at most ${capacity} bytes` },
        ]);
      }
      payload = oaepSeal((await this.store.publicKey(key, version)).object, plaintext, aad);
    }
    return { ciphertext: Buffer.concat([header, payload]), version };
  }

  /** Opens an envelope of `kind` made by `key`; any mismatch is the one generic failure. */
  async #open(key: KmsKey, kind: EnvelopeKind, sealed: Uint8Array, context: Context, note: OpNote): Promise<Opened> {
    const envelope = decodeEnvelope(sealed, kind);
    if (!envelope) throw failed(kind, "not an envelope of this kind");
    note.algorithm = envelope.algorithm;
    if (envelope.keyId !== key.id) throw failed(kind, "made by another key");
    note.version = versionOf(key, envelope.version) ?? note.version;
    if (!usableVersion(key, envelope.version)) {
      throw failed(kind, `version ${envelope.version} not usable (min ${key.minDecryptionVersion})`);
    }
    if (!algorithmFits(key.spec as SpecName, envelope.algorithm)) throw failed(kind, "algorithm does not fit the key");
    const aad = Buffer.concat([envelope.header, canonicalContext(context)]);
    let plaintext: Buffer | undefined;
    try {
      plaintext =
        envelope.algorithm === "aes_gcm"
          ? aesGcmOpen(await this.store.secret(key, envelope.version), envelope.payload, aad)
          : await oaepOpen(await this.store.secret(key, envelope.version), envelope.payload, aad);
    } catch (error) {
      if (error instanceof DomainError && error.code === "not_found") throw failed(kind, "version has no material");
      throw error;
    }
    if (!plaintext) throw failed(kind, "authentication failed (ciphertext, header or context differs)");
    return { plaintext, version: envelope.version };
  }

  encrypt(
    caller: Caller,
    base: AuditBase,
    keyId: string,
    algorithm: EncryptionAlgorithm,
    plaintext: Buffer,
    context: Context,
  ) {
    return this.#run(base, "kms.encrypt", "encrypt", keyId, async (note) => {
      const key = await this.#usableKey(
        caller,
        "kms.encrypt",
        keyId,
        "produce",
        "encrypt",
        "encrypt_decrypt",
        algorithm,
        note,
      );
      return this.#seal(key, "ciphertext", algorithm, plaintext, context, "plaintext");
    });
  }

  batchEncrypt(
    caller: Caller,
    base: AuditBase,
    keyId: string,
    algorithm: EncryptionAlgorithm,
    items: readonly { plaintext: Buffer; context: Context }[],
  ) {
    return this.#run(base, "kms.encrypt", "batch_encrypt", keyId, async (note) => {
      const key = await this.#usableKey(
        caller,
        "kms.encrypt",
        keyId,
        "produce",
        "encrypt",
        "encrypt_decrypt",
        algorithm,
        note,
      );
      note.detail = `items=${items.length}`;
      return eachInTurn(items, (item, i) =>
        this.#seal(key, "ciphertext", algorithm, item.plaintext, item.context, `items[${i}].plaintext`),
      );
    });
  }

  decrypt(caller: Caller, base: AuditBase, keyId: string, ciphertext: Uint8Array, context: Context) {
    return this.#run(base, "kms.decrypt", "decrypt", keyId, async (note) => {
      const key = await this.#usableKey(
        caller,
        "kms.decrypt",
        keyId,
        "consume",
        "decrypt",
        "encrypt_decrypt",
        undefined,
        note,
      );
      return this.#open(key, "ciphertext", ciphertext, context, note);
    });
  }

  batchDecrypt(
    caller: Caller,
    base: AuditBase,
    keyId: string,
    items: readonly { ciphertext: Uint8Array; context: Context }[],
  ) {
    return this.#run(base, "kms.decrypt", "batch_decrypt", keyId, async (note) => {
      const key = await this.#usableKey(
        caller,
        "kms.decrypt",
        keyId,
        "consume",
        "decrypt",
        "encrypt_decrypt",
        undefined,
        note,
      );
      note.detail = `items=${items.length}`;
      return eachInTurn(items, async (item, i): Promise<Opened> => {
        try {
          return await this.#open(key, "ciphertext", item.ciphertext, item.context, note);
        } catch (error) {
          if (error instanceof DomainError && error.reason === "DECRYPTION_FAILED") {
            throw new DomainError("invalid_argument", "DECRYPTION_FAILED", `decryption failed (items[${i}])`, {
              detail: `items[${i}]: ${error.detail}`,
            });
          }
          throw error;
        }
      });
    });
  }

  // -- envelope encryption -----------------------------------------------

  generateDataKey(
    caller: Caller,
    base: AuditBase,
    keyId: string,
    algorithm: EncryptionAlgorithm,
    bytes: 16 | 32,
    context: Context,
    withPlaintext: boolean,
  ) {
    return this.#run(
      base,
      "kms.data_key.generate",
      withPlaintext ? "generate_data_key" : "generate_data_key_without_plaintext",
      keyId,
      async (note) => {
        const key = await this.#usableKey(
          caller,
          "kms.data_key.generate",
          keyId,
          "produce",
          "generate data key",
          "encrypt_decrypt",
          algorithm,
          note,
        );
        note.detail = `bytes=${bytes}`;
        const plaintext = randomBytes(bytes);
        const sealed = await this.#seal(key, "wrappedKey", algorithm, plaintext, context, "data_key_spec");
        if (!withPlaintext) plaintext.fill(0);
        return {
          plaintext: withPlaintext ? plaintext : undefined,
          wrapped: sealed.ciphertext,
          version: sealed.version,
        };
      },
    );
  }

  wrapKey(
    caller: Caller,
    base: AuditBase,
    keyId: string,
    algorithm: EncryptionAlgorithm,
    material: Buffer,
    context: Context,
  ) {
    return this.#run(base, "kms.wrap", "wrap", keyId, async (note) => {
      const key = await this.#usableKey(
        caller,
        "kms.wrap",
        keyId,
        "produce",
        "wrap",
        "encrypt_decrypt",
        algorithm,
        note,
      );
      return this.#seal(key, "wrappedKey", algorithm, material, context, "key_material");
    });
  }

  unwrapKey(caller: Caller, base: AuditBase, keyId: string, wrapped: Uint8Array, context: Context) {
    return this.#run(base, "kms.unwrap", "unwrap", keyId, async (note) => {
      const key = await this.#usableKey(
        caller,
        "kms.unwrap",
        keyId,
        "consume",
        "unwrap",
        "encrypt_decrypt",
        undefined,
        note,
      );
      return this.#open(key, "wrappedKey", wrapped, context, note);
    });
  }

  reEncrypt(
    caller: Caller,
    base: AuditBase,
    request: {
      keyId: string;
      ciphertext: Uint8Array;
      context: Context;
      destinationKeyId: string;
      destinationAlgorithm: EncryptionAlgorithm;
      destinationContext: Context;
    },
  ) {
    return this.#run(base, "kms.reencrypt", "re_encrypt", request.keyId, async (note) => {
      const destinationId = request.destinationKeyId || request.keyId;
      note.detail = `to=${destinationId}`;
      const source = await this.#usableKey(
        caller,
        "kms.reencrypt",
        request.keyId,
        "consume",
        "re-encrypt",
        "encrypt_decrypt",
        undefined,
        note,
      );
      const destination = await this.#destinationKey(caller, base, request.keyId, destinationId, request);
      const opened = await this.#open(source, "ciphertext", request.ciphertext, request.context, note);
      try {
        const sealed = await this.#seal(
          destination,
          "ciphertext",
          request.destinationAlgorithm,
          opened.plaintext,
          request.destinationContext,
          "ciphertext",
        );
        note.detail = `to=${destinationId} v${sealed.version} alg=${request.destinationAlgorithm}`;
        return { ...sealed, keyId: destination.id, sourceVersion: opened.version };
      } finally {
        opened.plaintext.fill(0);
      }
    });
  }

  /**
   * The destination of a re-encryption (checks 1 to 5 for kms.encrypt). A
   * refusal is audited under the destination key as well, so its own trail
   * shows the attempt (the source key's event, written by #run, names it as
   * `to=`); one event per key, so none more when both are the same key.
   */
  async #destinationKey(
    caller: Caller,
    base: AuditBase,
    sourceId: string,
    destinationId: string,
    request: { destinationAlgorithm: EncryptionAlgorithm },
  ): Promise<KmsKey> {
    const note: OpNote = { version: 0, algorithm: "", detail: `from=${sourceId}` };
    try {
      return await this.#usableKey(
        caller,
        "kms.encrypt",
        destinationId,
        "produce",
        "re-encrypt",
        "encrypt_decrypt",
        request.destinationAlgorithm,
        note,
      );
    } catch (error) {
      // A malformed id names no key: the source's event records it, nothing is filed under it.
      if (error instanceof DomainError && destinationId !== sourceId && isId("kmsKey", destinationId)) {
        await this.ctx.audit.append({
          ...base,
          action: "kms.encrypt",
          target: auditTarget(destinationId, note.version),
          outcome: "denied",
          reason: `${error.auditReason}; ${describe("re_encrypt", note)}`.slice(0, 500),
        });
      }
      throw error;
    }
  }

  // -- public keys --------------------------------------------------------

  getPublicKey(caller: Caller, base: AuditBase, keyId: string, requested: number) {
    return this.#run(base, "kms.public_key.read", "get_public_key", keyId, async (note) => {
      const key = await this.#usableKey(
        caller,
        "kms.public_key.read",
        keyId,
        "export",
        "get public key",
        undefined,
        undefined,
        note,
      );
      const family = specs[key.spec as SpecName].family;
      if (family === "aes" || family === "hmac") throw specMismatch(key, "operation get public key");
      const version = requested || key.currentVersion;
      // A version below the minimum is no longer the key's: its signatures do
      // not verify here, so its public key is not handed to verifiers elsewhere.
      if (!usableVersion(key, version)) {
        throw new DomainError("not_found", "KEY_VERSION_NOT_FOUND", "key version not found", {
          detail: `version ${version} not usable (min ${key.minDecryptionVersion}, current ${key.currentVersion})`,
        });
      }
      note.version = version;
      const { object, pem } = await this.store.publicKey(key, version);
      const jwk = {
        ...object.export({ format: "jwk" }),
        kid: `${key.id}/v${version}`,
        use: key.usage === "sign_verify" ? "sig" : "enc",
      };
      return { pem, jwk: JSON.stringify(jwk), version, spec: key.spec as SpecName };
    });
  }
}
