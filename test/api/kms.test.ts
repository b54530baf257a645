// The KMS end to end, through the public API over a real transport: keys of
// every spec round-trip (property tests over random data and contexts);
// what the broker hands out is self-describing and tamper-evident; grants
// per key decide who may use or administer what, across tenants too; every
// operation and refusal is audited without its data; rotation under load
// loses nothing; a batch leaves room for other calls; signatures verify
// outside the broker (openssl, jose); and the database holds no key
// material in clear.
import { execFileSync } from "node:child_process";
import { createDecipheriv, createHash, createPublicKey } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Code, type ConnectError } from "@connectrpc/connect";
import fc from "fast-check";
import { base64url, compactVerify, importJWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import { localRootOfTrust, RootKey } from "../../src/crypto/root-key.js";
import { dpopClient, mintDpopToken } from "../support/agents.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { createDpopKey } from "../support/dpop.js";
import { failure, reasonOf } from "../support/errors.js";
import { type Actor, createActor } from "../support/fixtures.js";
import {
  activeKey,
  EncryptionAlgorithm,
  type KeyClient,
  KeyService,
  KeySpec,
  KeyUsage,
  keyEvents,
  kmsAdminScopes,
  kmsUseScopes,
  MacAlgorithm,
  SigningAlgorithm,
} from "../support/kms.js";

const S = SigningAlgorithm;
const signSpecs: [string, KeySpec, SigningAlgorithm[]][] = [
  [
    "RSA-2048",
    KeySpec.RSA_2048,
    [
      S.RSASSA_PSS_SHA_256,
      S.RSASSA_PSS_SHA_384,
      S.RSASSA_PSS_SHA_512,
      S.RSASSA_PKCS1_V1_5_SHA_256,
      S.RSASSA_PKCS1_V1_5_SHA_384,
      S.RSASSA_PKCS1_V1_5_SHA_512,
    ],
  ],
  ["RSA-3072", KeySpec.RSA_3072, [S.RSASSA_PSS_SHA_256, S.RSASSA_PKCS1_V1_5_SHA_512]],
  ["RSA-4096", KeySpec.RSA_4096, [S.RSASSA_PSS_SHA_512, S.RSASSA_PKCS1_V1_5_SHA_256]],
  ["P-256", KeySpec.EC_P256, [S.ECDSA_SHA_256, S.ECDSA_SHA_384, S.ECDSA_SHA_512]],
  ["P-384", KeySpec.EC_P384, [S.ECDSA_SHA_384, S.ECDSA_SHA_256]],
  ["P-521", KeySpec.EC_P521, [S.ECDSA_SHA_512]],
  ["secp256k1", KeySpec.EC_SECP256K1, [S.ECDSA_SHA_256]],
  ["Ed25519", KeySpec.ED25519, [S.ED25519]],
  ["Ed448", KeySpec.ED448, [S.ED448]],
];
const hashOf: Partial<Record<SigningAlgorithm, string>> = {
  [S.RSASSA_PSS_SHA_256]: "sha256",
  [S.RSASSA_PSS_SHA_384]: "sha384",
  [S.RSASSA_PSS_SHA_512]: "sha512",
  [S.RSASSA_PKCS1_V1_5_SHA_256]: "sha256",
  [S.RSASSA_PKCS1_V1_5_SHA_384]: "sha384",
  [S.RSASSA_PKCS1_V1_5_SHA_512]: "sha512",
  [S.ECDSA_SHA_256]: "sha256",
  [S.ECDSA_SHA_384]: "sha384",
  [S.ECDSA_SHA_512]: "sha512",
};
const context = fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }), fc.string({ maxLength: 40 }), {
  maxKeys: 5,
});
const bytes = (max: number) => fc.uint8Array({ maxLength: max });

/** A call's error code and reason (both undefined when it succeeded). */
const outcome = (error: ConnectError | undefined) => [error?.code, reasonOf(error)];
const message = { input: { case: "message" as const, value: Buffer.from("m") } };

/** An envelope (ciphertext, signature, MAC, wrapped key) whose header names `version` instead. */
function relabelled(envelope: Uint8Array, version: number): Buffer {
  const copy = Buffer.from(envelope);
  copy.writeUInt32BE(version, 3);
  return copy;
}

/** `bytes` with one bit flipped at `at`. */
function flipped(bytes: Uint8Array, at: number): Uint8Array {
  const copy = new Uint8Array(bytes);
  copy[at] = (copy[at] as number) ^ 0x01;
  return copy;
}

describe.each(databaseKinds)("KeyService on %s", (kind) => {
  let t: TestBroker;
  let admin: Actor;
  let keys: KeyClient;

  beforeAll(async () => {
    // RSA-4096 key generation can take tens of seconds on a busy machine.
    t = await startTestBroker(kind, { AEGIS_REQUEST_TIMEOUT_MS: "180000" });
    admin = await createActor(t, { scopes: [...kmsAdminScopes, ...kmsUseScopes, "token.user.create"] });
    keys = t.client(KeyService, { key: admin.key });
  }, 60_000);
  afterAll(() => t.stop());

  describe("round trips over every spec", { timeout: 240_000 }, () => {
    it.each(signSpecs)(
      "signs and verifies with %s, messages and digests",
      async (_name, spec, algorithms) => {
        const keyId = await activeKey(keys, spec);
        for (const algorithm of algorithms) {
          await fc.assert(
            fc.asyncProperty(bytes(4096), async (message) => {
              const signed = await keys.sign({
                keyId,
                algorithm,
                input: { input: { case: "message", value: message } },
              });
              expect(signed.keyVersion).toBe(1);
              const ok = await keys.verify({
                keyId,
                algorithm,
                input: { input: { case: "message", value: message } },
                signature: signed.signature,
              });
              expect(ok.valid).toBe(true);
              const hash = hashOf[algorithm];
              if (hash) {
                const digest = createHash(hash).update(message).digest();
                const byDigest = await keys.sign({
                  keyId,
                  algorithm,
                  input: { input: { case: "digest", value: digest } },
                });
                // A signature of the digest is a signature of the message.
                const again = await keys.verify({
                  keyId,
                  algorithm,
                  input: { input: { case: "message", value: message } },
                  signature: byDigest.signature,
                });
                expect(again.valid).toBe(true);
              }
              const other = await keys.verify({
                keyId,
                algorithm,
                input: { input: { case: "message", value: new Uint8Array([...message, 1]) } },
                signature: signed.signature,
              });
              expect(other.valid).toBe(false);
            }),
            { numRuns: 3 },
          );
        }
      },
      120_000,
    );

    it.each([
      ["AES-128", KeySpec.AES_128],
      ["AES-192", KeySpec.AES_192],
      ["AES-256", KeySpec.AES_256],
    ])("encrypts and decrypts with %s-GCM under any context", async (_name, spec) => {
      const keyId = await activeKey(keys, spec);
      await fc.assert(
        fc.asyncProperty(bytes(4096), context, async (plaintext, encryptionContext) => {
          const sealed = await keys.encrypt({
            keyId,
            algorithm: EncryptionAlgorithm.AES_GCM,
            plaintext,
            encryptionContext,
          });
          const opened = await keys.decrypt({ keyId, ciphertext: sealed.ciphertext, encryptionContext });
          expect(Buffer.from(opened.plaintext).equals(Buffer.from(plaintext))).toBe(true);
        }),
        { numRuns: 15 },
      );
    });

    it.each([
      ["RSA-2048", KeySpec.RSA_2048, 190],
      ["RSA-3072", KeySpec.RSA_3072, 318],
      ["RSA-4096", KeySpec.RSA_4096, 446],
    ])(
      "encrypts and decrypts with %s OAEP-SHA-256 up to its capacity",
      async (_name, spec, capacity) => {
        const keyId = await activeKey(keys, spec, { sign: false });
        await fc.assert(
          fc.asyncProperty(bytes(capacity), context, async (plaintext, encryptionContext) => {
            const sealed = await keys.encrypt({
              keyId,
              algorithm: EncryptionAlgorithm.RSAES_OAEP_SHA_256,
              plaintext,
              encryptionContext,
            });
            const opened = await keys.decrypt({ keyId, ciphertext: sealed.ciphertext, encryptionContext });
            expect(Buffer.from(opened.plaintext).equals(Buffer.from(plaintext))).toBe(true);
          }),
          { numRuns: 5 },
        );
        const over = await failure(
          keys.encrypt({
            keyId,
            algorithm: EncryptionAlgorithm.RSAES_OAEP_SHA_256,
            plaintext: new Uint8Array(capacity + 1),
          }),
        );
        expect(over?.code).toBe(Code.InvalidArgument);
      },
      60_000,
    );

    it.each([
      ["HMAC-SHA-256", KeySpec.HMAC_SHA256, MacAlgorithm.HMAC_SHA_256],
      ["HMAC-SHA-384", KeySpec.HMAC_SHA384, MacAlgorithm.HMAC_SHA_384],
      ["HMAC-SHA-512", KeySpec.HMAC_SHA512, MacAlgorithm.HMAC_SHA_512],
    ])("generates and verifies %s MACs", async (_name, spec, algorithm) => {
      const keyId = await activeKey(keys, spec);
      await fc.assert(
        fc.asyncProperty(bytes(4096), async (message) => {
          const { mac } = await keys.generateMac({ keyId, algorithm, message });
          expect((await keys.verifyMac({ keyId, algorithm, message, mac })).valid).toBe(true);
          expect((await keys.verifyMac({ keyId, algorithm, message, mac: flipped(mac, mac.length - 1) })).valid).toBe(
            false,
          );
        }),
        { numRuns: 10 },
      );
    });

    it("makes data keys and wraps caller keys (AES-GCM and RSA-OAEP), unwrapping them again", async () => {
      for (const [spec, algorithm] of [
        [KeySpec.AES_256, EncryptionAlgorithm.AES_GCM],
        [KeySpec.RSA_2048, EncryptionAlgorithm.RSAES_OAEP_SHA_256],
      ] as const) {
        const keyId = await activeKey(keys, spec, { sign: false });
        const encryptionContext = { bucket: "reports" };
        const made = await keys.generateDataKey({ keyId, algorithm, dataKeySpec: 2, encryptionContext });
        expect(made.plaintext).toHaveLength(32);
        const unwrapped = await keys.unwrapKey({ keyId, wrappedKey: made.wrappedKey, encryptionContext });
        expect(Buffer.from(unwrapped.keyMaterial).equals(Buffer.from(made.plaintext))).toBe(true);
        const blind = await keys.generateDataKeyWithoutPlaintext({ keyId, algorithm, dataKeySpec: 1 });
        expect((await keys.unwrapKey({ keyId, wrappedKey: blind.wrappedKey })).keyMaterial).toHaveLength(16);
        const material = new Uint8Array(48).fill(7);
        const wrapped = await keys.wrapKey({ keyId, algorithm, keyMaterial: material, encryptionContext });
        const back = await keys.unwrapKey({ keyId, wrappedKey: wrapped.wrappedKey, encryptionContext });
        expect(back.keyMaterial).toEqual(material);
        const wrong = await failure(keys.unwrapKey({ keyId, wrappedKey: wrapped.wrappedKey }));
        expect([wrong?.code, reasonOf(wrong), wrong?.rawMessage]).toEqual([
          Code.InvalidArgument,
          "UNWRAP_FAILED",
          "unwrap failed",
        ]);
        // A wrapped key is not a ciphertext, nor the other way round.
        expect(
          reasonOf(await failure(keys.decrypt({ keyId, ciphertext: wrapped.wrappedKey, encryptionContext }))),
        ).toBe("DECRYPTION_FAILED");
      }
    });

    it("re-encrypts to the current version and to another key, the plaintext never leaving", async () => {
      const from = await activeKey(keys, KeySpec.AES_128);
      const to = await activeKey(keys, KeySpec.AES_256);
      const plaintext = Buffer.from("ledger 2026");
      const old = await keys.encrypt({
        keyId: from,
        algorithm: EncryptionAlgorithm.AES_GCM,
        plaintext,
        encryptionContext: { a: "1" },
      });
      await keys.rotateKey({ keyId: from });
      const same = await keys.reEncrypt({
        keyId: from,
        ciphertext: old.ciphertext,
        encryptionContext: { a: "1" },
        destinationAlgorithm: EncryptionAlgorithm.AES_GCM,
        destinationEncryptionContext: { a: "2" },
      });
      expect([same.keyId, same.keyVersion, same.sourceKeyVersion]).toEqual([from, 2, 1]);
      expect(
        Buffer.from(
          (await keys.decrypt({ keyId: from, ciphertext: same.ciphertext, encryptionContext: { a: "2" } })).plaintext,
        ).toString(),
      ).toBe("ledger 2026");
      const moved = await keys.reEncrypt({
        keyId: from,
        ciphertext: old.ciphertext,
        encryptionContext: { a: "1" },
        destinationKeyId: to,
        destinationAlgorithm: EncryptionAlgorithm.AES_GCM,
      });
      expect(moved.keyId).toBe(to);
      expect(Buffer.from((await keys.decrypt({ keyId: to, ciphertext: moved.ciphertext })).plaintext).toString()).toBe(
        "ledger 2026",
      );
      expect(Object.keys(moved)).not.toContain("plaintext");
    });

    it("batches encrypt, decrypt and sign, all or none", async () => {
      const aes = await activeKey(keys, KeySpec.AES_256);
      const items = Array.from({ length: 20 }, (_, i) => ({
        plaintext: Buffer.from(`item ${i}`),
        encryptionContext: { i: String(i) },
      }));
      const sealed = await keys.batchEncrypt({ keyId: aes, algorithm: EncryptionAlgorithm.AES_GCM, items });
      const opened = await keys.batchDecrypt({
        keyId: aes,
        items: sealed.results.map((r, i) => ({ ciphertext: r.ciphertext, encryptionContext: { i: String(i) } })),
      });
      expect(opened.results.map((r) => Buffer.from(r.plaintext).toString())).toEqual(
        items.map((i) => i.plaintext.toString()),
      );
      const mixed = await failure(
        keys.batchDecrypt({
          keyId: aes,
          items: sealed.results.map((r) => ({ ciphertext: r.ciphertext, encryptionContext: { i: "0" } })),
        }),
      );
      expect(reasonOf(mixed)).toBe("DECRYPTION_FAILED");
      const ec = await activeKey(keys, KeySpec.EC_P256);
      const signed = await keys.batchSign({
        keyId: ec,
        algorithm: S.ECDSA_SHA_256,
        inputs: items.map((i) => ({ input: { case: "message", value: i.plaintext } })),
      });
      expect(signed.signatures).toHaveLength(20);
      const tooMany = await failure(
        keys.batchSign({
          keyId: ec,
          algorithm: S.ECDSA_SHA_256,
          inputs: Array.from({ length: 101 }, () => ({ input: { case: "message", value: new Uint8Array(1) } })),
        }),
      );
      expect(tooMany?.code).toBe(Code.InvalidArgument);
    });
  });

  describe("batches and other calls", () => {
    it("answers a call sent while a batch of 100 RSA-4096 digests is being signed before the batch", {
      timeout: 240_000,
    }, async () => {
      const rsa = await activeKey(keys, KeySpec.RSA_4096);
      const ec = await activeKey(keys, KeySpec.EC_P256);
      const signer = await createActor(t, { tenantId: admin.tenantId, kind: "agent", scopes: [`kms.sign:key:${rsa}`] });
      const agent = t.client(KeyService, { key: signer.key });
      // Digests are signed in place (not on the thread pool), each taking milliseconds.
      const inputs = Array.from({ length: 100 }, (_, i) => ({
        input: { case: "digest" as const, value: createHash("sha512").update(`${i}`).digest() },
      }));
      const batch = () => agent.batchSign({ keyId: rsa, algorithm: S.RSASSA_PKCS1_V1_5_SHA_512, inputs });
      const sign = () => keys.sign({ keyId: ec, algorithm: S.ECDSA_SHA_256, input: message });
      const batchesBegun = async () => {
        const text = await (
          await fetch(`${t.broker.url}/metrics`, { headers: { authorization: `Bearer ${t.adminKey}` } })
        ).text();
        return Number(/^aegis_keys_op_total\{operation="batch_sign"\} (\d+)/m.exec(text)?.[1] ?? 0);
      };
      // Warm: rows and material cached, so from the moment the broker counts
      // it to its audit event the batch waits on nothing but the event loop.
      await batch();
      await sign();
      const before = await batchesBegun();
      const answered: string[] = [];
      const batched = batch().then(() => answered.push("batch"));
      // The broker counts the batch as it begins it; only then is the sign
      // sent, so it arrives while the batch is being signed (or, were the
      // loop held for the whole batch, once all of it was).
      let begun = before;
      while (begun === before) begun = await batchesBegun();
      await sign().then(() => answered.push("sign"));
      await batched;
      // The audit trail has the broker's own order: a batch that held the
      // loop is audited before any call it kept waiting.
      const seqOf = async (keyId: string, op: string) =>
        (await keyEvents(t, keyId)).filter((e) => e.reason.startsWith(`op=${op} `)).at(-1)?.seq ?? 0n;
      const [signed, signedBatch] = [await seqOf(ec, "sign"), await seqOf(rsa, "batch_sign")];
      expect(signed < signedBatch, `sign audited at ${signed}, the batch at ${signedBatch}`).toBe(true);
      expect(answered).toEqual(["sign", "batch"]);
    });
  });

  describe("what leaves the broker is self-describing and tamper-evident", () => {
    it("refuses an RSA-OAEP ciphertext with a flipped byte anywhere, truncated, or under another context, as 'decryption failed'", async () => {
      const keyId = await activeKey(keys, KeySpec.RSA_2048, { sign: false });
      const encryptionContext = { tenant: "acme" };
      const { ciphertext } = await keys.encrypt({
        keyId,
        algorithm: EncryptionAlgorithm.RSAES_OAEP_SHA_256,
        plaintext: Buffer.from("secret"),
        encryptionContext,
      });
      const attempts: [string, Uint8Array, Record<string, string>][] = [
        ...Array.from({ length: ciphertext.length }, (_, i): [string, Uint8Array, Record<string, string>] => [
          `byte ${i}`,
          flipped(ciphertext, i),
          encryptionContext,
        ]),
        ["truncated", ciphertext.subarray(0, ciphertext.length - 1), encryptionContext],
        ["another context", ciphertext, { tenant: "other" }],
        ["no context", ciphertext, {}],
      ];
      for (const [what, bytes, ctx] of attempts) {
        const error = await failure(keys.decrypt({ keyId, ciphertext: bytes, encryptionContext: ctx }));
        expect([what, error?.code, reasonOf(error)]).toEqual([what, Code.InvalidArgument, "DECRYPTION_FAILED"]);
      }
      expect(Buffer.from((await keys.decrypt({ keyId, ciphertext, encryptionContext })).plaintext).toString()).toBe(
        "secret",
      );
    });

    it("refuses a flipped byte anywhere, a truncation, another context, another version or key, all as 'decryption failed'", async () => {
      const keyId = await activeKey(keys, KeySpec.AES_256);
      const other = await activeKey(keys, KeySpec.AES_256);
      const encryptionContext = { tenant: "acme", purpose: "invoice" };
      const { ciphertext } = await keys.encrypt({
        keyId,
        algorithm: EncryptionAlgorithm.AES_GCM,
        plaintext: Buffer.from("secret"),
        encryptionContext,
      });
      expect(ciphertext[0]).toBe(0xa1);
      expect(Buffer.from(ciphertext.subarray(8, 8 + keyId.length)).toString()).toBe(keyId);
      const attempts: [string, Uint8Array, Record<string, string>, string?][] = [
        ...Array.from({ length: ciphertext.length }, (_, i): [string, Uint8Array, Record<string, string>] => [
          `byte ${i}`,
          flipped(ciphertext, i),
          encryptionContext,
        ]),
        ["truncated tag", ciphertext.subarray(0, ciphertext.length - 1), encryptionContext],
        ["header only", ciphertext.subarray(0, 8 + keyId.length), encryptionContext],
        ["another value", ciphertext, { ...encryptionContext, purpose: "receipt" }],
        ["an extra entry", ciphertext, { ...encryptionContext, extra: "" }],
        ["a missing entry", ciphertext, { tenant: "acme" }],
        ["no context", ciphertext, {}],
        ["another key", ciphertext, encryptionContext, other],
      ];
      for (const [what, bytes, ctx, id] of attempts) {
        const error = await failure(keys.decrypt({ keyId: id ?? keyId, ciphertext: bytes, encryptionContext: ctx }));
        expect([what, error?.code, reasonOf(error), error?.rawMessage]).toEqual([
          what,
          Code.InvalidArgument,
          "DECRYPTION_FAILED",
          "decryption failed",
        ]);
      }
      // Naming another version in the header: rotate, then claim v2 made it.
      await keys.rotateKey({ keyId });
      const relabelled = new Uint8Array(ciphertext);
      relabelled[6] = 2;
      expect(reasonOf(await failure(keys.decrypt({ keyId, ciphertext: relabelled, encryptionContext })))).toBe(
        "DECRYPTION_FAILED",
      );
      expect(Buffer.from((await keys.decrypt({ keyId, ciphertext, encryptionContext })).plaintext).toString()).toBe(
        "secret",
      );
    });

    it("answers valid=false for a tampered signature, another algorithm or another key's signature", async () => {
      const keyId = await activeKey(keys, KeySpec.EC_P256);
      const other = await activeKey(keys, KeySpec.EC_P256);
      const input = { input: { case: "message" as const, value: Buffer.from("pay 100") } };
      const { signature } = await keys.sign({ keyId, algorithm: S.ECDSA_SHA_256, input });
      const otherSig = (await keys.sign({ keyId: other, algorithm: S.ECDSA_SHA_256, input })).signature;
      // The answer names the version only when the signature names a usable version of this key.
      for (const [bytes, algorithm, version] of [
        [flipped(signature, signature.length - 3), S.ECDSA_SHA_256, 1],
        [signature.subarray(0, signature.length - 2), S.ECDSA_SHA_256, 1],
        [signature, S.ECDSA_SHA_384, 1],
        [otherSig, S.ECDSA_SHA_256, 0],
        [relabelled(signature, 2), S.ECDSA_SHA_256, 0],
      ] as const) {
        const answer = await keys.verify({ keyId, algorithm, input, signature: bytes });
        expect([answer.valid, answer.keyVersion]).toEqual([false, version]);
      }
    });

    it("answers a header naming a version of 2^31 or more like any other bad envelope, never echoing it", async () => {
      const ec = await activeKey(keys, KeySpec.EC_P256);
      const other = await activeKey(keys, KeySpec.EC_P256);
      const aes = await activeKey(keys, KeySpec.AES_256);
      const mac = await activeKey(keys, KeySpec.HMAC_SHA256);
      const AES = EncryptionAlgorithm.AES_GCM;
      const own = (await keys.sign({ keyId: ec, algorithm: S.ECDSA_SHA_256, input: message })).signature;
      const foreign = (await keys.sign({ keyId: other, algorithm: S.ECDSA_SHA_256, input: message })).signature;
      const { ciphertext } = await keys.encrypt({ keyId: aes, algorithm: AES, plaintext: Buffer.from("p") });
      const { wrappedKey } = await keys.wrapKey({ keyId: aes, algorithm: AES, keyMaterial: new Uint8Array(16) });
      const made = await keys.generateMac({
        keyId: mac,
        algorithm: MacAlgorithm.HMAC_SHA_256,
        message: Buffer.from("m"),
      });
      for (const version of [0x80000000, 0xffffffff]) {
        // Verify's answer has an int32 version: echoed, this one could not be encoded (internal).
        for (const protocol of ["connect", "grpc"] as const) {
          const client = t.client(KeyService, { key: admin.key, protocol });
          for (const signature of [relabelled(own, version), relabelled(foreign, version)]) {
            const answer = await client.verify({ keyId: ec, algorithm: S.ECDSA_SHA_256, input: message, signature });
            expect([answer.valid, answer.keyVersion]).toEqual([false, 0]);
          }
        }
        const verified = await keys.verifyMac({
          keyId: mac,
          algorithm: MacAlgorithm.HMAC_SHA_256,
          message: Buffer.from("m"),
          mac: relabelled(made.mac, version),
        });
        expect(verified.valid).toBe(false);
        const refusals = [
          [keys.decrypt({ keyId: aes, ciphertext: relabelled(ciphertext, version) }), "DECRYPTION_FAILED"],
          [keys.unwrapKey({ keyId: aes, wrappedKey: relabelled(wrappedKey, version) }), "UNWRAP_FAILED"],
          [
            keys.reEncrypt({ keyId: aes, ciphertext: relabelled(ciphertext, version), destinationAlgorithm: AES }),
            "DECRYPTION_FAILED",
          ],
        ] as const;
        for (const [call, reason] of refusals) {
          expect(outcome(await failure(call))).toEqual([Code.InvalidArgument, reason]);
        }
      }
      // The audit events name the keys' real versions, the one named in the header only in the reason.
      const events = [...(await keyEvents(t, ec)), ...(await keyEvents(t, aes)), ...(await keyEvents(t, mac))];
      expect(new Set(events.map((e) => e.target.split(" ")[1]))).toEqual(new Set(["v1"]));
      expect(events.filter((e) => e.reason.includes("version 4294967295 not usable")).length).toBeGreaterThanOrEqual(5);
    });
  });

  describe("specs, algorithms and sizes", () => {
    it("refuses an operation or algorithm that does not fit the key's spec, naming both", async () => {
      const aes = await activeKey(keys, KeySpec.AES_256);
      const ed = await activeKey(keys, KeySpec.ED25519);
      const rsaSign = await activeKey(keys, KeySpec.RSA_2048);
      const message = { input: { case: "message" as const, value: new Uint8Array(3) } };
      const cases = [
        [() => keys.sign({ keyId: aes, algorithm: S.ECDSA_SHA_256, input: message }), "operation sign", "AES_256"],
        [
          () => keys.encrypt({ keyId: ed, algorithm: EncryptionAlgorithm.AES_GCM, plaintext: new Uint8Array(1) }),
          "operation encrypt",
          "ED25519",
        ],
        [
          () => keys.sign({ keyId: ed, algorithm: S.ECDSA_SHA_256, input: message }),
          "algorithm ECDSA_SHA_256",
          "ED25519",
        ],
        [
          () =>
            keys.encrypt({
              keyId: rsaSign,
              algorithm: EncryptionAlgorithm.RSAES_OAEP_SHA_256,
              plaintext: new Uint8Array(1),
            }),
          "operation encrypt",
          "RSA_2048",
        ],
        [
          () => keys.generateMac({ keyId: aes, algorithm: MacAlgorithm.HMAC_SHA_256, message: new Uint8Array(1) }),
          "operation generate MAC",
          "AES_256",
        ],
        [() => keys.getPublicKey({ keyId: aes }), "operation get public key", "AES_256"],
      ] as const;
      for (const [call, what, spec] of cases) {
        const error = await failure(call());
        expect(error?.code).toBe(Code.FailedPrecondition);
        expect(reasonOf(error)).toBe("KEY_SPEC_MISMATCH");
        expect(error?.rawMessage).toContain(what);
        expect(error?.rawMessage).toContain(spec);
      }
      const rsaNoUsage = await failure(keys.createKey({ spec: KeySpec.RSA_2048 }));
      expect(rsaNoUsage?.code).toBe(Code.InvalidArgument);
      const hmacToEncrypt = await failure(
        keys.createKey({ spec: KeySpec.HMAC_SHA256, usage: KeyUsage.ENCRYPT_DECRYPT }),
      );
      expect(hmacToEncrypt?.code).toBe(Code.InvalidArgument);
    });

    it("refuses oversized input and digests of the wrong length as invalid_argument", async () => {
      const aes = await activeKey(keys, KeySpec.AES_256);
      const ec = await activeKey(keys, KeySpec.EC_P256);
      const ed = await activeKey(keys, KeySpec.ED25519);
      const calls = [
        () => keys.encrypt({ keyId: aes, algorithm: EncryptionAlgorithm.AES_GCM, plaintext: new Uint8Array(4097) }),
        () =>
          keys.sign({
            keyId: ec,
            algorithm: S.ECDSA_SHA_256,
            input: { input: { case: "message", value: new Uint8Array(4097) } },
          }),
        () =>
          keys.sign({
            keyId: ec,
            algorithm: S.ECDSA_SHA_256,
            input: { input: { case: "digest", value: new Uint8Array(31) } },
          }),
        () =>
          keys.sign({
            keyId: ec,
            algorithm: S.ECDSA_SHA_384,
            input: { input: { case: "digest", value: new Uint8Array(32) } },
          }),
        () =>
          keys.sign({
            keyId: ed,
            algorithm: S.ED25519,
            input: { input: { case: "digest", value: new Uint8Array(32) } },
          }),
        () => keys.sign({ keyId: ec, algorithm: S.ECDSA_SHA_256, input: {} }),
        () => keys.wrapKey({ keyId: aes, algorithm: EncryptionAlgorithm.AES_GCM, keyMaterial: new Uint8Array(1025) }),
        () => keys.encrypt({ keyId: aes, algorithm: EncryptionAlgorithm.UNSPECIFIED, plaintext: new Uint8Array(1) }),
        () =>
          keys.encrypt({
            keyId: aes,
            algorithm: EncryptionAlgorithm.AES_GCM,
            plaintext: new Uint8Array(1),
            encryptionContext: { "": "x" },
          }),
      ];
      for (const call of calls) expect((await failure(call()))?.code).toBe(Code.InvalidArgument);
    });
  });

  describe("authorization per key", () => {
    it("gives the creator the administration rights over the key, not the use rights", async () => {
      const creator = await createActor(t, { tenantId: admin.tenantId, scopes: ["kms.key.create"] });
      const mine = t.client(KeyService, { key: creator.key });
      const { key } = await mine.createKey({ spec: KeySpec.EC_P256 });
      const keyId = key?.id ?? "";
      expect(keyId).toMatch(/^key_[a-z2-7]{20}$/);
      await mine.activateKey({ keyId });
      await mine.rotateKey({ keyId });
      expect((await mine.getKey({ keyId })).key?.currentVersion).toBe(2);
      const grants = await t.db.database.prisma.grant.findMany({ where: { principalId: creator.principalId } });
      expect(grants.map((g) => g.scope).sort()).toEqual(
        ["destroy", "compromise", "rotate", "deactivate", "activate", "update", "read"]
          .map((a) => `kms.key.${a}:key:${keyId}`)
          .concat("kms.key.create")
          .sort(),
      );
      const sign = await failure(
        mine.sign({
          keyId,
          algorithm: S.ECDSA_SHA_256,
          input: { input: { case: "message", value: new Uint8Array(1) } },
        }),
      );
      expect([sign?.code, reasonOf(sign)]).toEqual([Code.PermissionDenied, "MISSING_GRANT"]);
    });

    it("lets a user with kms.sign on one key sign with it and nothing else", async () => {
      const keyId = await activeKey(keys, KeySpec.EC_P256);
      const otherId = await activeKey(keys, KeySpec.EC_P256);
      const signer = await createActor(t, {
        tenantId: admin.tenantId,
        kind: "agent",
        scopes: [`kms.sign:key:${keyId}`],
      });
      const client = t.client(KeyService, { key: signer.key });
      const input = { input: { case: "message" as const, value: Buffer.from("ok") } };
      expect((await client.sign({ keyId, algorithm: S.ECDSA_SHA_256, input })).keyVersion).toBe(1);
      const elsewhere = await failure(client.sign({ keyId: otherId, algorithm: S.ECDSA_SHA_256, input }));
      expect([elsewhere?.code, reasonOf(elsewhere)]).toEqual([Code.PermissionDenied, "TARGET_NOT_GRANTED"]);
      const rotate = await failure(client.rotateKey({ keyId }));
      expect([rotate?.code, reasonOf(rotate)]).toEqual([Code.PermissionDenied, "MISSING_GRANT"]);
      const wildcard = await failure(client.sign({ keyId: "*", algorithm: S.ECDSA_SHA_256, input }));
      expect(wildcard?.code).toBe(Code.NotFound);
      const events = await keyEvents(t, otherId);
      expect(
        events.some((e) => e.action === "kms.sign" && e.outcome === "denied" && e.actorId === signer.principalId),
      ).toBe(true);
    });

    it("answers other tenants' keys as not found, even to a holder of every right", async () => {
      const keyId = await activeKey(keys, KeySpec.AES_256);
      const stranger = await createActor(t, { scopes: [...kmsAdminScopes, ...kmsUseScopes] });
      const theirs = t.client(KeyService, { key: stranger.key });
      for (const call of [
        () => theirs.getKey({ keyId }),
        () => theirs.encrypt({ keyId, algorithm: EncryptionAlgorithm.AES_GCM, plaintext: new Uint8Array(1) }),
        () => theirs.rotateKey({ keyId }),
        () => theirs.compromiseKey({ keyId }),
      ]) {
        const error = await failure(call());
        expect([error?.code, reasonOf(error)]).toEqual([Code.NotFound, "KEY_NOT_FOUND"]);
      }
      expect((await theirs.listKeys({})).keys.map((k) => k.id)).not.toContain(keyId);
      expect((await keys.getKey({ keyId })).key?.state).toBe(2);
    });

    it("requires a DPoP-bound credential for a key whose policy says so", async () => {
      const keyId = await activeKey(keys, KeySpec.AES_256, { requireDpop: true });
      const bearer = await failure(
        keys.encrypt({ keyId, algorithm: EncryptionAlgorithm.AES_GCM, plaintext: new Uint8Array(1) }),
      );
      expect([bearer?.code, reasonOf(bearer)]).toEqual([Code.PermissionDenied, "KEY_REQUIRES_DPOP"]);
      const dpop = await createDpopKey();
      const token = await mintDpopToken(t, admin.key, dpop, ["kms.encrypt:key:*", "kms.decrypt:key:*"]);
      const bound = dpopClient(t, KeyService, token, dpop);
      const sealed = await bound.encrypt({
        keyId,
        algorithm: EncryptionAlgorithm.AES_GCM,
        plaintext: Buffer.from("x"),
      });
      expect(Buffer.from((await bound.decrypt({ keyId, ciphertext: sealed.ciphertext })).plaintext).toString()).toBe(
        "x",
      );
      await keys.updateKey({ keyId, requireDpop: false });
      expect((await keys.decrypt({ keyId, ciphertext: sealed.ciphertext })).keyVersion).toBe(1);
    });

    it("refuses every use of a DPoP-only key to a bearer credential, as the destination of a re-encryption too", async () => {
      const AES = EncryptionAlgorithm.AES_GCM;
      const aes = await activeKey(keys, KeySpec.AES_256, { requireDpop: true });
      const ec = await activeKey(keys, KeySpec.EC_P256, { requireDpop: true });
      const hmac = await activeKey(keys, KeySpec.HMAC_SHA256, { requireDpop: true });
      const open = await activeKey(keys, KeySpec.AES_256);
      const dpop = await createDpopKey();
      const bound = dpopClient(t, KeyService, await mintDpopToken(t, admin.key, dpop, kmsUseScopes), dpop);
      const sealed = await bound.encrypt({ keyId: aes, algorithm: AES, plaintext: Buffer.from("p") });
      const wrapped = await bound.wrapKey({ keyId: aes, algorithm: AES, keyMaterial: new Uint8Array(16) });
      const signed = await bound.sign({ keyId: ec, algorithm: S.ECDSA_SHA_256, input: message });
      const mac = await bound.generateMac({
        keyId: hmac,
        algorithm: MacAlgorithm.HMAC_SHA_256,
        message: Buffer.from("m"),
      });
      const openSealed = await keys.encrypt({ keyId: open, algorithm: AES, plaintext: Buffer.from("p") });
      const calls = [
        () => keys.decrypt({ keyId: aes, ciphertext: sealed.ciphertext }),
        () => keys.batchDecrypt({ keyId: aes, items: [{ ciphertext: sealed.ciphertext }] }),
        () => keys.unwrapKey({ keyId: aes, wrappedKey: wrapped.wrappedKey }),
        () => keys.generateDataKeyWithoutPlaintext({ keyId: aes, algorithm: AES, dataKeySpec: 2 }),
        () =>
          keys.reEncrypt({
            keyId: aes,
            ciphertext: sealed.ciphertext,
            destinationKeyId: open,
            destinationAlgorithm: AES,
          }),
        () =>
          keys.reEncrypt({
            keyId: open,
            ciphertext: openSealed.ciphertext,
            destinationKeyId: aes,
            destinationAlgorithm: AES,
          }),
        () => keys.verify({ keyId: ec, algorithm: S.ECDSA_SHA_256, input: message, signature: signed.signature }),
        () => keys.getPublicKey({ keyId: ec }),
        () =>
          keys.verifyMac({
            keyId: hmac,
            algorithm: MacAlgorithm.HMAC_SHA_256,
            message: Buffer.from("m"),
            mac: mac.mac,
          }),
      ];
      for (const call of calls) {
        expect(outcome(await failure(call()))).toEqual([Code.PermissionDenied, "KEY_REQUIRES_DPOP"]);
      }
      // A user API token is a bearer credential too.
      const { secret } = await t
        .client(TokenService, { key: admin.key })
        .mintUserApiToken({ scopes: [`kms.decrypt:key:${aes}`], label: "bearer" });
      const user = t.client(KeyService, { key: secret });
      expect(outcome(await failure(user.decrypt({ keyId: aes, ciphertext: sealed.ciphertext })))).toEqual([
        Code.PermissionDenied,
        "KEY_REQUIRES_DPOP",
      ]);
    });

    it("keeps a narrowed user API token to its one right on its one key", async () => {
      const AES = EncryptionAlgorithm.AES_GCM;
      const a = await activeKey(keys, KeySpec.AES_256);
      const b = await activeKey(keys, KeySpec.AES_256);
      const ec = await activeKey(keys, KeySpec.EC_P256);
      const { secret } = await t
        .client(TokenService, { key: admin.key })
        .mintUserApiToken({ scopes: [`kms.encrypt:key:${a}`], label: "narrow" });
      const narrow = t.client(KeyService, { key: secret });
      const sealed = await narrow.encrypt({ keyId: a, algorithm: AES, plaintext: Buffer.from("p") });
      const refusals = await Promise.all([
        failure(narrow.encrypt({ keyId: b, algorithm: AES, plaintext: Buffer.from("p") })),
        failure(narrow.batchEncrypt({ keyId: b, algorithm: AES, items: [{ plaintext: Buffer.from("p") }] })),
        failure(narrow.decrypt({ keyId: a, ciphertext: sealed.ciphertext })),
        failure(narrow.batchDecrypt({ keyId: a, items: [{ ciphertext: sealed.ciphertext }] })),
        failure(narrow.generateDataKey({ keyId: a, algorithm: AES, dataKeySpec: 2 })),
        failure(narrow.generateDataKeyWithoutPlaintext({ keyId: a, algorithm: AES, dataKeySpec: 2 })),
        failure(narrow.wrapKey({ keyId: a, algorithm: AES, keyMaterial: new Uint8Array(16) })),
        failure(narrow.reEncrypt({ keyId: a, ciphertext: sealed.ciphertext, destinationAlgorithm: AES })),
        failure(narrow.getKey({ keyId: a })),
        failure(narrow.listKeys({})),
        failure(narrow.listKeyVersions({ keyId: a })),
        failure(narrow.rotateKey({ keyId: a })),
        failure(narrow.updateKey({ keyId: a, requireDpop: false })),
        failure(narrow.getPublicKey({ keyId: ec })),
        failure(narrow.sign({ keyId: ec, algorithm: S.ECDSA_SHA_256, input: message })),
      ]);
      for (const error of refusals) expect(error?.code).toBe(Code.PermissionDenied);
    });

    it("needs kms.encrypt on the destination of a re-encryption, and kms.reencrypt alone decrypts nothing", async () => {
      const AES = EncryptionAlgorithm.AES_GCM;
      const a = await activeKey(keys, KeySpec.AES_256);
      const b = await activeKey(keys, KeySpec.AES_256);
      const sealed = await keys.encrypt({ keyId: a, algorithm: AES, plaintext: Buffer.from("p") });
      const mover = await createActor(t, {
        tenantId: admin.tenantId,
        kind: "agent",
        scopes: [`kms.reencrypt:key:${a}`, `kms.decrypt:key:${b}`],
      });
      const client = t.client(KeyService, { key: mover.key });
      const request = { keyId: a, ciphertext: sealed.ciphertext, destinationAlgorithm: AES };
      expect(outcome(await failure(client.reEncrypt({ ...request, destinationKeyId: b })))).toEqual([
        Code.PermissionDenied,
        "TARGET_NOT_GRANTED",
      ]);
      expect(outcome(await failure(client.reEncrypt(request)))).toEqual([Code.PermissionDenied, "TARGET_NOT_GRANTED"]);
      // Nor does a ciphertext of A open under B, which it may decrypt.
      expect(outcome(await failure(client.decrypt({ keyId: b, ciphertext: sealed.ciphertext })))).toEqual([
        Code.InvalidArgument,
        "DECRYPTION_FAILED",
      ]);
    });

    it("gives a key's creator no rights on it through the narrowed token that created it", async () => {
      const creator = await createActor(t, { tenantId: admin.tenantId, scopes: ["kms.key.create"] });
      const dpop = await createDpopKey();
      const bound = dpopClient(t, KeyService, await mintDpopToken(t, creator.key, dpop, ["kms.key.create"]), dpop);
      const { key } = await bound.createKey({ spec: KeySpec.AES_256, activate: true });
      const keyId = key?.id ?? "";
      for (const call of [
        () => bound.getKey({ keyId }),
        () => bound.rotateKey({ keyId }),
        () => bound.compromiseKey({ keyId }),
        () => bound.scheduleKeyDestruction({ keyId }),
      ]) {
        expect((await failure(call()))?.code).toBe(Code.PermissionDenied);
      }
      // The creator's full credential does administer it (and still cannot use it).
      const full = t.client(KeyService, { key: creator.key });
      expect((await full.getKey({ keyId })).key?.id).toBe(keyId);
      expect(
        (await failure(full.encrypt({ keyId, algorithm: EncryptionAlgorithm.AES_GCM, plaintext: Buffer.from("p") })))
          ?.code,
      ).toBe(Code.PermissionDenied);
    });
  });

  describe("keys, versions and lists", () => {
    it("rotates to new versions while old ones still decrypt and verify, down to the minimum version", async () => {
      const aes = await activeKey(keys, KeySpec.AES_256);
      const v1 = await keys.encrypt({
        keyId: aes,
        algorithm: EncryptionAlgorithm.AES_GCM,
        plaintext: Buffer.from("one"),
      });
      await keys.rotateKey({ keyId: aes });
      const v2 = await keys.encrypt({
        keyId: aes,
        algorithm: EncryptionAlgorithm.AES_GCM,
        plaintext: Buffer.from("two"),
      });
      expect([v1.keyVersion, v2.keyVersion]).toEqual([1, 2]);
      expect((await keys.decrypt({ keyId: aes, ciphertext: v1.ciphertext })).keyVersion).toBe(1);
      const versions = await keys.listKeyVersions({ keyId: aes });
      expect(versions.versions.map((v) => [v.version, v.current, v.usable])).toEqual([
        [2, true, true],
        [1, false, true],
      ]);
      await keys.updateKey({ keyId: aes, minDecryptionVersion: 2 });
      expect(reasonOf(await failure(keys.decrypt({ keyId: aes, ciphertext: v1.ciphertext })))).toBe(
        "DECRYPTION_FAILED",
      );
      expect((await keys.decrypt({ keyId: aes, ciphertext: v2.ciphertext })).keyVersion).toBe(2);
      const lower = await failure(keys.updateKey({ keyId: aes, minDecryptionVersion: 1 }));
      expect(lower?.code).toBe(Code.InvalidArgument);
    });

    it("stops handing out a version's public key once its signatures no longer verify (below the minimum version)", async () => {
      const keyId = await activeKey(keys, KeySpec.EC_P256);
      const v1 = await keys.sign({ keyId, algorithm: S.ECDSA_SHA_256, input: message });
      await keys.rotateKey({ keyId });
      expect((await keys.getPublicKey({ keyId, version: 1 })).keyVersion).toBe(1);
      await keys.updateKey({ keyId, minDecryptionVersion: 2 });
      const verified = await keys.verify({
        keyId,
        algorithm: S.ECDSA_SHA_256,
        input: message,
        signature: v1.signature,
      });
      expect([verified.valid, verified.keyVersion]).toEqual([false, 0]);
      // Offline verifiers would accept v1's signatures with v1's public key: it is refused as a missing version.
      for (const version of [1, 3]) {
        expect(outcome(await failure(keys.getPublicKey({ keyId, version })))).toEqual([
          Code.NotFound,
          "KEY_VERSION_NOT_FOUND",
        ]);
      }
      expect((await keys.getPublicKey({ keyId, version: 2 })).keyVersion).toBe(2);
      expect((await keys.getPublicKey({ keyId })).keyVersion).toBe(2);
    });

    it("keeps every ciphertext decryptable while rotations run alongside encryptions", async () => {
      const keyId = await activeKey(keys, KeySpec.AES_256);
      const work = [
        ...Array.from({ length: 60 }, (_, i) =>
          keys
            .encrypt({
              keyId,
              algorithm: EncryptionAlgorithm.AES_GCM,
              plaintext: Buffer.from(`m${i}`),
              encryptionContext: { i: `${i}` },
            })
            .then((r) => ({ i, ...r })),
        ),
        ...Array.from({ length: 4 }, () => keys.rotateKey({ keyId }).then(() => undefined)),
      ];
      const sealed = (await Promise.all(work)).filter((r) => r !== undefined);
      expect((await keys.getKey({ keyId })).key?.currentVersion).toBe(5);
      for (const s of sealed) {
        const opened = await keys.decrypt({ keyId, ciphertext: s.ciphertext, encryptionContext: { i: `${s.i}` } });
        expect(Buffer.from(opened.plaintext).toString()).toBe(`m${s.i}`);
        expect(opened.keyVersion).toBe(s.keyVersion);
      }
    });

    it("lists keys by state, spec and label, one page at a time, and updates description and labels", async () => {
      const lister = await createActor(t, { scopes: kmsAdminScopes });
      const own = t.client(KeyService, { key: lister.key });
      const ids = [];
      for (let i = 0; i < 5; i++) {
        const { key } = await own.createKey({
          spec: i < 3 ? KeySpec.AES_256 : KeySpec.EC_P256,
          labels: { team: i % 2 ? "red" : "blue" },
          activate: i > 0,
        });
        ids.push(key?.id ?? "");
      }
      const all = [];
      let pageToken = "";
      do {
        const page = await own.listKeys({ pageSize: 2, pageToken });
        all.push(...page.keys.map((k) => k.id));
        pageToken = page.nextPageToken;
      } while (pageToken);
      expect(all).toEqual([...ids].sort());
      expect((await own.listKeys({ spec: KeySpec.EC_P256 })).keys).toHaveLength(2);
      expect((await own.listKeys({ state: 1 })).keys.map((k) => k.id)).toEqual([ids[0]]);
      expect((await own.listKeys({ label: "team=red" })).keys.map((k) => k.id).sort()).toEqual([ids[1], ids[3]].sort());
      const { key } = await own.updateKey({
        keyId: ids[0] as string,
        description: "invoices",
        replaceLabels: true,
        labels: { team: "red" },
      });
      expect([key?.description, key?.labels]).toEqual(["invoices", { team: "red" }]);
      expect((await own.listKeys({ label: "team=red" })).keys).toHaveLength(3);
      expect((await failure(own.listKeys({ label: "team" })))?.code).toBe(Code.InvalidArgument);
    });
  });

  describe("outside the broker", { timeout: 120_000 }, () => {
    it("exports public keys as PEM and JWK, and its signatures verify with openssl and jose", async () => {
      const dir = mkdtempSync(path.join(tmpdir(), "kms-openssl-"));
      const message = Buffer.from("the quick brown fox");
      writeFileSync(path.join(dir, "msg"), message);
      const cases = [
        [KeySpec.EC_P256, S.ECDSA_SHA_256, ["dgst", "-sha256"], "ES256"],
        [
          KeySpec.RSA_2048,
          S.RSASSA_PSS_SHA_256,
          ["dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1"],
          "PS256",
        ],
        [KeySpec.RSA_2048, S.RSASSA_PKCS1_V1_5_SHA_256, ["dgst", "-sha256"], "RS256"],
        // jose (WebCrypto) has no secp256k1: openssl alone checks it.
        [KeySpec.EC_SECP256K1, S.ECDSA_SHA_256, ["dgst", "-sha256"], undefined],
        [KeySpec.ED25519, S.ED25519, undefined, "EdDSA"],
      ] as const;
      for (const [spec, algorithm, dgst, jwsAlg] of cases) {
        const keyId = await activeKey(keys, spec);
        const pub = await keys.getPublicKey({ keyId });
        expect(pub.pem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
        expect(JSON.parse(pub.jwk).kid).toBe(`${keyId}/v1`);
        writeFileSync(path.join(dir, "pub.pem"), pub.pem);
        const signed = await keys.sign({ keyId, algorithm, input: { input: { case: "message", value: message } } });
        writeFileSync(path.join(dir, "sig"), signed.rawSignature);
        const args = dgst
          ? [...dgst, "-verify", "pub.pem", "-signature", "sig", "msg"]
          : ["pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "msg", "-sigfile", "sig"];
        expect(execFileSync("openssl", args, { cwd: dir }).toString()).toMatch(
          /Verified OK|Signature Verified Successfully/,
        );
        if (!jwsAlg) continue;
        // A JWS signed by the broker: sign the signing input, verify with jose and the exported JWK.
        const head = base64url.encode(JSON.stringify({ alg: jwsAlg }));
        const body = base64url.encode('{"sub":"agent"}');
        const jwsSigned = await keys.sign({
          keyId,
          algorithm,
          input: { input: { case: "message", value: Buffer.from(`${head}.${body}`) } },
        });
        const raw = spec === KeySpec.EC_P256 ? derToJose(jwsSigned.rawSignature, 32) : jwsSigned.rawSignature;
        const verified = await compactVerify(
          `${head}.${body}.${base64url.encode(raw)}`,
          await importJWK(JSON.parse(pub.jwk), jwsAlg),
        );
        expect(new TextDecoder().decode(verified.payload)).toBe('{"sub":"agent"}');
        expect(createPublicKey(pub.pem).asymmetricKeyType).toBeDefined();
      }
    });

    it("stores no key material in clear: the database holds it only wrapped by the root key", async () => {
      const keyId = await activeKey(keys, KeySpec.AES_256);
      const encryptionContext = { k: "v" };
      const { ciphertext } = await keys.encrypt({
        keyId,
        algorithm: EncryptionAlgorithm.AES_GCM,
        plaintext: Buffer.from("hello"),
        encryptionContext,
      });
      const prisma = t.db.database.prisma;
      const version = await prisma.kmsKeyVersion.findUniqueOrThrow({ where: { keyId_version: { keyId, version: 1 } } });
      const root = localRootOfTrust(new RootKey(Buffer.from(t.config.rootKey ?? "", "base64url")));
      const material = Buffer.from(
        await root.unwrap(Buffer.from(version.material ?? "", "base64"), `aegis-kms:${keyId}:v1:aes_256`),
      );
      expect(material).toHaveLength(32);
      // The unwrapped material is the key: it opens the broker's ciphertext.
      const idEnd = 8 + keyId.length;
      const header = Buffer.from(ciphertext.subarray(0, idEnd));
      const body = Buffer.from(ciphertext.subarray(idEnd));
      const decipher = createDecipheriv("aes-256-gcm", material, body.subarray(0, 12));
      decipher.setAAD(Buffer.concat([header, Buffer.from("00000001000000016b0000000176", "hex")]));
      decipher.setAuthTag(body.subarray(body.length - 16));
      expect(Buffer.concat([decipher.update(body.subarray(12, body.length - 16)), decipher.final()]).toString()).toBe(
        "hello",
      );
      // Nowhere in any table, in hex or base64.
      const tables = await prisma.$queryRaw<{ table_name: string }[]>`
        SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`;
      let dump = "";
      for (const { table_name } of tables) {
        const rows = await prisma.$queryRawUnsafe<{ row: unknown }[]>(
          `SELECT row_to_json(t)::text AS row FROM "${table_name}" t`,
        );
        dump += rows.map((r) => String(r.row)).join("\n");
      }
      expect(dump).toContain(keyId);
      for (const form of [material.toString("hex"), material.toString("base64"), material.toString("base64url")]) {
        expect(dump.includes(form)).toBe(false);
      }
    });
  });

  describe("audit and metrics", () => {
    it("audits every operation and refusal with actor, key, version, operation and algorithm, never the data", async () => {
      const keyId = await activeKey(keys, KeySpec.EC_P256);
      const aes = await activeKey(keys, KeySpec.AES_256);
      const input = { input: { case: "message" as const, value: Buffer.from("TOP-SECRET-MESSAGE") } };
      const { signature } = await keys.sign({ keyId, algorithm: S.ECDSA_SHA_256, input });
      await keys.verify({ keyId, algorithm: S.ECDSA_SHA_256, input, signature: flipped(signature, 40) });
      const { ciphertext } = await keys.encrypt({
        keyId: aes,
        algorithm: EncryptionAlgorithm.AES_GCM,
        plaintext: Buffer.from("TOP-SECRET-PLAINTEXT"),
        encryptionContext: { who: "TOP-SECRET-CONTEXT" },
      });
      await failure(keys.decrypt({ keyId: aes, ciphertext, encryptionContext: { who: "other" } }));
      await keys.compromiseKey({ keyId, reason: "laptop lost" });
      await failure(keys.sign({ keyId, algorithm: S.ECDSA_SHA_256, input }));
      const events = [...(await keyEvents(t, keyId)), ...(await keyEvents(t, aes))];
      const summary = events.map((e) => [e.action, e.outcome, e.target.split(" ")[1], e.actorId === admin.principalId]);
      expect(summary).toEqual(
        expect.arrayContaining([
          ["kms.sign", "success", "v1", true],
          ["kms.verify", "denied", "v1", true],
          ["kms.encrypt", "success", "v1", true],
          ["kms.decrypt", "denied", "v1", true],
          ["kms.key.compromise", "success", "v1", true],
          ["kms.sign", "denied", "v1", true],
        ]),
      );
      const reasons = events.map((e) => e.reason);
      expect(reasons).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^op=sign alg=ecdsa_sha_256/),
          expect.stringMatching(/^INVALID_SIGNATURE; op=verify alg=ecdsa_sha_256/),
          expect.stringMatching(/^DECRYPTION_FAILED: authentication failed .*; op=decrypt alg=aes_gcm/),
          expect.stringMatching(/severity=CRITICAL why="laptop lost"/),
          expect.stringMatching(/^KEY_STATE: key is COMPROMISED; sign needs ACTIVE; op=sign alg=ecdsa_sha_256/),
        ]),
      );
      expect(JSON.stringify(events, (_k, v) => (typeof v === "bigint" ? String(v) : v))).not.toMatch(/TOP-SECRET/);
    });

    it("audits a re-encryption refused on its destination under the destination key too, once per key", async () => {
      const a = await activeKey(keys, KeySpec.AES_256);
      const b = await activeKey(keys, KeySpec.AES_256);
      const AES = EncryptionAlgorithm.AES_GCM;
      const sealed = await keys.encrypt({
        keyId: a,
        algorithm: AES,
        plaintext: Buffer.from("TOP-SECRET-PLAINTEXT"),
        encryptionContext: { who: "TOP-SECRET-CONTEXT" },
      });
      const mover = await createActor(t, {
        tenantId: admin.tenantId,
        kind: "agent",
        scopes: [`kms.reencrypt:key:${a}`],
      });
      const client = t.client(KeyService, { key: mover.key });
      const request = {
        keyId: a,
        ciphertext: sealed.ciphertext,
        encryptionContext: { who: "TOP-SECRET-CONTEXT" },
        destinationAlgorithm: AES,
      };
      expect(outcome(await failure(client.reEncrypt({ ...request, destinationKeyId: b })))).toEqual([
        Code.PermissionDenied,
        "TARGET_NOT_GRANTED",
      ]);
      const byMover = async (keyId: string) =>
        (await keyEvents(t, keyId))
          .filter((e) => e.actorId === mover.principalId)
          .map((e) => [e.action, e.outcome, e.target, e.reason]);
      expect(await byMover(b)).toEqual([
        [
          "kms.encrypt",
          "denied",
          b,
          expect.stringMatching(`^TARGET_NOT_GRANTED.*; op=re_encrypt alg=aes_gcm from=${a}$`),
        ],
      ]);
      expect(await byMover(a)).toEqual([
        ["kms.reencrypt", "denied", `${a} v1`, expect.stringMatching(`^TARGET_NOT_GRANTED.*; op=re_encrypt to=${b}$`)],
      ]);
      // Re-encrypting under the same key: refused once, audited once.
      expect(outcome(await failure(client.reEncrypt(request)))).toEqual([Code.PermissionDenied, "TARGET_NOT_GRANTED"]);
      expect(await byMover(a)).toHaveLength(2);
      const events = [...(await keyEvents(t, a)), ...(await keyEvents(t, b))];
      expect(JSON.stringify(events, (_k, v) => (typeof v === "bigint" ? String(v) : v))).not.toMatch(/TOP-SECRET/);
    });

    it("counts operations and errors in aegis_keys_op_total and aegis_keys_op_errors_total", async () => {
      const aes = await activeKey(keys, KeySpec.AES_256);
      await keys.encrypt({ keyId: aes, algorithm: EncryptionAlgorithm.AES_GCM, plaintext: new Uint8Array(1) });
      await failure(keys.decrypt({ keyId: aes, ciphertext: new Uint8Array(20) }));
      const text = await (
        await fetch(`${t.broker.url}/metrics`, { headers: { authorization: `Bearer ${t.adminKey}` } })
      ).text();
      expect(text).toMatch(/^aegis_keys_op_total\{operation="encrypt"\} [1-9]/m);
      expect(text).toMatch(/^aegis_keys_op_errors_total\{operation="decrypt",code="invalid_argument"\} [1-9]/m);
    });
  });
});

/** A DER ECDSA signature as JOSE's r||s (RFC 7518 §3.4). */
function derToJose(der: Uint8Array, size: number): Uint8Array {
  const b = Buffer.from(der);
  let at = 2;
  if ((b[1] as number) & 0x80) at += (b[1] as number) & 0x7f;
  const read = () => {
    const length = b[at + 1] as number;
    const value = b.subarray(at + 2, at + 2 + length);
    at += 2 + length;
    const trimmed = value.subarray(Math.max(0, value.length - size));
    return Buffer.concat([Buffer.alloc(size - trimmed.length), trimmed]);
  };
  return Buffer.concat([read(), read()]);
}
