// The KMS end to end, through the public API over a real transport: keys of
// every spec round-trip (property tests over random data and contexts);
// what the broker hands out is self-describing and tamper-evident; grants
// per key decide who may use or administer what, across tenants too; every
// operation and refusal is audited without its data; rotation under load
// loses nothing; signatures verify outside the broker (openssl, jose); and
// the database holds no key material in clear.
import { execFileSync } from "node:child_process";
import { createDecipheriv, createHash, createPublicKey } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Code } from "@connectrpc/connect";
import fc from "fast-check";
import { base64url, compactVerify, importJWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
    admin = await createActor(t, { scopes: [...kmsAdminScopes, ...kmsUseScopes] });
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
      for (const [bytes, algorithm] of [
        [flipped(signature, signature.length - 3), S.ECDSA_SHA_256],
        [signature.subarray(0, signature.length - 2), S.ECDSA_SHA_256],
        [signature, S.ECDSA_SHA_384],
        [otherSig, S.ECDSA_SHA_256],
      ] as const) {
        expect((await keys.verify({ keyId, algorithm, input, signature: bytes })).valid).toBe(false);
      }
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
