// KeyService handlers: decode, call one domain function, encode. Proto enum
// values and the domain's names are the same words (KEY_SPEC_AES_256 is
// `aes_256`, SIGNING_ALGORITHM_ECDSA_SHA_256 is `ecdsa_sha_256`), checked
// against the domain's lists; the request rules have already refused
// unspecified and unknown values.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { KmsKey } from "../../gen/prisma/client.js";
import {
  DataKeySpec,
  EncryptionAlgorithm,
  type KeySchema,
  KeyService,
  KeySpec,
  KeyState,
  KeyUsage,
  MacAlgorithm,
  type SignInput as ProtoSignInput,
  SigningAlgorithm,
} from "../../gen/proto/aegis/kms/v1/kms_pb.js";
import { auditBase, callerOf } from "../core/call.js";
import { durationOfSeconds, optionalSeconds } from "../core/duration.js";
import { invalidArgument } from "../core/errors/domain-error.js";
import { readPage } from "../core/pagination.js";
import type { SignInput } from "./key-crypto.js";
import type { KeyAdmin } from "./keys.js";
import { effectiveState, keyStates } from "./lifecycle.js";
import type { KeyOperations } from "./operations.js";
import { encryptionAlgorithms, macAlgorithms, signingAlgorithms, specNames, usageNames } from "./specs.js";

export { KeyService };

/** The domain name of a proto enum value (`KEY_SPEC_AES_256` → `aes_256`), if the domain knows it. */
function nameOf<T extends string>(e: Record<number, string>, value: number, names: readonly T[]): T | undefined {
  const name = e[value]?.toLowerCase();
  return names.includes(name as T) ? (name as T) : undefined;
}

function required<T extends string>(e: Record<number, string>, value: number, names: readonly T[], field: string): T {
  const name = nameOf(e, value, names);
  if (!name) throw invalidArgument([{ field, description: "must be specified" }]);
  return name;
}

/** The proto enum value of a domain name. */
function protoValue(e: Record<string, string | number>, name: string): number {
  return (e[name.toUpperCase()] as number | undefined) ?? 0;
}

function signInput(input: ProtoSignInput | undefined, field: string): SignInput {
  const given = input?.input;
  if (given?.case === "message") return { message: Buffer.from(given.value) };
  if (given?.case === "digest") return { digest: Buffer.from(given.value) };
  throw invalidArgument([{ field, description: "needs a message or a digest" }]);
}

const dataKeyBytes = { [DataKeySpec.AES_128]: 16, [DataKeySpec.AES_256]: 32 } as const;

export function keyService(admin: KeyAdmin, ops: KeyOperations, now: () => Date): ServiceImpl<typeof KeyService> {
  const toKey = (key: KmsKey): MessageInitShape<typeof KeySchema> => ({
    id: key.id,
    tenantId: key.tenantId,
    spec: protoValue(KeySpec, key.spec),
    usage: protoValue(KeyUsage, key.usage),
    state: protoValue(KeyState, effectiveState(key, now())),
    description: key.description,
    labels: (key.labels ?? {}) as Record<string, string>,
    currentVersion: key.currentVersion,
    minDecryptionVersion: key.minDecryptionVersion,
    requireDpop: key.requireDpop,
    ...(key.rotationPeriodSeconds ? { rotationPeriod: durationOfSeconds(key.rotationPeriodSeconds) } : {}),
    ...(key.nextRotationAt ? { nextRotationTime: timestampFromDate(key.nextRotationAt) } : {}),
    ...(key.destroyAt ? { destroyTime: timestampFromDate(key.destroyAt) } : {}),
    ...(key.compromisedAt ? { compromiseTime: timestampFromDate(key.compromisedAt) } : {}),
    createdBy: key.createdBy,
    createTime: timestampFromDate(key.createdAt),
    updateTime: timestampFromDate(key.updatedAt),
  });
  const signing = (value: number) => required(SigningAlgorithm, value, signingAlgorithms, "algorithm");
  const encryption = (value: number, field = "algorithm") =>
    required(EncryptionAlgorithm, value, encryptionAlgorithms, field);
  const mac = (value: number) => required(MacAlgorithm, value, macAlgorithms, "algorithm");
  const bytesOf = (value: number) => {
    const bytes = dataKeyBytes[value as keyof typeof dataKeyBytes];
    if (!bytes) throw invalidArgument([{ field: "data_key_spec", description: "must be specified" }]);
    return bytes;
  };
  return {
    async createKey(req, call) {
      const key = await admin.create(callerOf(call), auditBase(call), {
        spec: required(KeySpec, req.spec, specNames, "spec"),
        usage: nameOf(KeyUsage, req.usage, usageNames),
        description: req.description,
        labels: req.labels,
        activate: req.activate,
        requireDpop: req.requireDpop,
        rotationPeriodSeconds: optionalSeconds(req.rotationPeriod) ?? 0,
      });
      return { key: toKey(key) };
    },
    async getKey(req, call) {
      return { key: toKey(await admin.get(callerOf(call), req.keyId)) };
    },
    async listKeys(req, call) {
      const page = await admin.list(
        callerOf(call),
        {
          state: nameOf(KeyState, req.state, keyStates),
          spec: nameOf(KeySpec, req.spec, specNames),
          label: req.label || undefined,
        },
        readPage(req),
      );
      return { keys: page.items.map(toKey), nextPageToken: page.nextPageToken };
    },
    async updateKey(req, call) {
      const key = await admin.update(callerOf(call), auditBase(call), req.keyId, {
        description: req.description,
        labels: req.replaceLabels ? req.labels : undefined,
        requireDpop: req.requireDpop,
        rotationPeriodSeconds: optionalSeconds(req.rotationPeriod),
        minDecryptionVersion: req.minDecryptionVersion,
      });
      return { key: toKey(key) };
    },
    async activateKey(req, call) {
      return { key: toKey(await admin.activate(callerOf(call), auditBase(call), req.keyId)) };
    },
    async deactivateKey(req, call) {
      return { key: toKey(await admin.deactivate(callerOf(call), auditBase(call), req.keyId)) };
    },
    async rotateKey(req, call) {
      return { key: toKey(await admin.rotate(callerOf(call), auditBase(call), req.keyId)) };
    },
    async compromiseKey(req, call) {
      return { key: toKey(await admin.compromise(callerOf(call), auditBase(call), req.keyId, req.reason)) };
    },
    async scheduleKeyDestruction(req, call) {
      const key = await admin.scheduleDestruction(
        callerOf(call),
        auditBase(call),
        req.keyId,
        optionalSeconds(req.waitingPeriod),
      );
      return { key: toKey(key) };
    },
    async cancelKeyDestruction(req, call) {
      return { key: toKey(await admin.cancelDestruction(callerOf(call), auditBase(call), req.keyId)) };
    },
    async listKeyVersions(req, call) {
      const { versions } = await admin.versions(callerOf(call), req.keyId);
      return {
        versions: versions.map((v) => ({
          version: v.version,
          createTime: timestampFromDate(v.createdAt),
          current: v.current,
          usable: v.usable,
        })),
      };
    },
    async sign(req, call) {
      const signed = await ops.sign(
        callerOf(call),
        auditBase(call),
        req.keyId,
        signing(req.algorithm),
        signInput(req.input, "input"),
      );
      return { signature: signed.signature, rawSignature: signed.rawSignature, keyVersion: signed.version };
    },
    async batchSign(req, call) {
      const inputs = req.inputs.map((input, i) => signInput(input, `inputs[${i}]`));
      const signed = await ops.batchSign(callerOf(call), auditBase(call), req.keyId, signing(req.algorithm), inputs);
      return {
        signatures: signed.map((s) => ({
          signature: s.signature,
          rawSignature: s.rawSignature,
          keyVersion: s.version,
        })),
      };
    },
    async verify(req, call) {
      const result = await ops.verify(
        callerOf(call),
        auditBase(call),
        req.keyId,
        signing(req.algorithm),
        signInput(req.input, "input"),
        req.signature,
      );
      return { valid: result.valid, keyVersion: result.version };
    },
    async generateMac(req, call) {
      const made = await ops.generateMac(
        callerOf(call),
        auditBase(call),
        req.keyId,
        mac(req.algorithm),
        Buffer.from(req.message),
      );
      return { mac: made.mac, keyVersion: made.version };
    },
    async verifyMac(req, call) {
      const result = await ops.verifyMac(
        callerOf(call),
        auditBase(call),
        req.keyId,
        mac(req.algorithm),
        Buffer.from(req.message),
        req.mac,
      );
      return { valid: result.valid };
    },
    async encrypt(req, call) {
      const sealed = await ops.encrypt(
        callerOf(call),
        auditBase(call),
        req.keyId,
        encryption(req.algorithm),
        Buffer.from(req.plaintext),
        req.encryptionContext,
      );
      return { ciphertext: sealed.ciphertext, keyVersion: sealed.version };
    },
    async batchEncrypt(req, call) {
      const sealed = await ops.batchEncrypt(
        callerOf(call),
        auditBase(call),
        req.keyId,
        encryption(req.algorithm),
        req.items.map((item) => ({ plaintext: Buffer.from(item.plaintext), context: item.encryptionContext })),
      );
      return { results: sealed.map((s) => ({ ciphertext: s.ciphertext, keyVersion: s.version })) };
    },
    async decrypt(req, call) {
      const opened = await ops.decrypt(
        callerOf(call),
        auditBase(call),
        req.keyId,
        req.ciphertext,
        req.encryptionContext,
      );
      return { plaintext: opened.plaintext, keyVersion: opened.version };
    },
    async batchDecrypt(req, call) {
      const opened = await ops.batchDecrypt(
        callerOf(call),
        auditBase(call),
        req.keyId,
        req.items.map((item) => ({ ciphertext: item.ciphertext, context: item.encryptionContext })),
      );
      return { results: opened.map((o) => ({ plaintext: o.plaintext, keyVersion: o.version })) };
    },
    async generateDataKey(req, call) {
      const made = await ops.generateDataKey(
        callerOf(call),
        auditBase(call),
        req.keyId,
        encryption(req.algorithm),
        bytesOf(req.dataKeySpec),
        req.encryptionContext,
        true,
      );
      return { plaintext: made.plaintext ?? new Uint8Array(), wrappedKey: made.wrapped, keyVersion: made.version };
    },
    async generateDataKeyWithoutPlaintext(req, call) {
      const made = await ops.generateDataKey(
        callerOf(call),
        auditBase(call),
        req.keyId,
        encryption(req.algorithm),
        bytesOf(req.dataKeySpec),
        req.encryptionContext,
        false,
      );
      return { wrappedKey: made.wrapped, keyVersion: made.version };
    },
    async wrapKey(req, call) {
      const sealed = await ops.wrapKey(
        callerOf(call),
        auditBase(call),
        req.keyId,
        encryption(req.algorithm),
        Buffer.from(req.keyMaterial),
        req.encryptionContext,
      );
      return { wrappedKey: sealed.ciphertext, keyVersion: sealed.version };
    },
    async unwrapKey(req, call) {
      const opened = await ops.unwrapKey(
        callerOf(call),
        auditBase(call),
        req.keyId,
        req.wrappedKey,
        req.encryptionContext,
      );
      return { keyMaterial: opened.plaintext, keyVersion: opened.version };
    },
    async reEncrypt(req, call) {
      const result = await ops.reEncrypt(callerOf(call), auditBase(call), {
        keyId: req.keyId,
        ciphertext: req.ciphertext,
        context: req.encryptionContext,
        destinationKeyId: req.destinationKeyId,
        destinationAlgorithm: encryption(req.destinationAlgorithm, "destination_algorithm"),
        destinationContext: req.destinationEncryptionContext,
      });
      return {
        ciphertext: result.ciphertext,
        keyId: result.keyId,
        keyVersion: result.version,
        sourceKeyVersion: result.sourceVersion,
      };
    },
    async getPublicKey(req, call) {
      const result = await ops.getPublicKey(callerOf(call), auditBase(call), req.keyId, req.version);
      return { pem: result.pem, jwk: result.jwk, keyVersion: result.version, spec: protoValue(KeySpec, result.spec) };
    },
  };
}
