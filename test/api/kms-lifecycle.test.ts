// The key state machine over the wire, as a table: every state × every
// operation, each cell either allowed or refused with FAILED_PRECONDITION
// and the current state. Then the periodic jobs: destruction wipes the
// material once its time passed (metadata and audit remain), cancelling
// before that brings the key back, and keys rotate on their period.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { failure, reasonOf } from "../support/errors.js";
import { createActor, seconds } from "../support/fixtures.js";
import {
  activeKey,
  EncryptionAlgorithm,
  type KeyClient,
  KeyService,
  KeySpec,
  kmsAdminScopes,
  kmsUseScopes,
  MacAlgorithm,
  SigningAlgorithm,
} from "../support/kms.js";

type State = "pre_active" | "active" | "deactivated" | "compromised" | "destruction_pending" | "destroyed";
const states: State[] = ["pre_active", "active", "deactivated", "compromised", "destruction_pending", "destroyed"];
const day = 86_400_000;

/** Keys of one state, with what they made while active. */
interface Fixture {
  aes: string;
  ec: string;
  hmac: string;
  ciphertext: Uint8Array;
  wrapped: Uint8Array;
  signature: Uint8Array;
  mac: Uint8Array;
}

const message = { input: { case: "message" as const, value: Buffer.from("m") } };
type Op = (keys: KeyClient, f: Fixture) => Promise<unknown>;
const operations: Record<string, Op> = {
  sign: (k, f) => k.sign({ keyId: f.ec, algorithm: SigningAlgorithm.ECDSA_SHA_256, input: message }),
  verify: (k, f) =>
    k.verify({ keyId: f.ec, algorithm: SigningAlgorithm.ECDSA_SHA_256, input: message, signature: f.signature }),
  encrypt: (k, f) => k.encrypt({ keyId: f.aes, algorithm: EncryptionAlgorithm.AES_GCM, plaintext: Buffer.from("p") }),
  decrypt: (k, f) => k.decrypt({ keyId: f.aes, ciphertext: f.ciphertext }),
  generate_mac: (k, f) =>
    k.generateMac({ keyId: f.hmac, algorithm: MacAlgorithm.HMAC_SHA_256, message: Buffer.from("m") }),
  verify_mac: (k, f) =>
    k.verifyMac({ keyId: f.hmac, algorithm: MacAlgorithm.HMAC_SHA_256, message: Buffer.from("m"), mac: f.mac }),
  wrap: (k, f) => k.wrapKey({ keyId: f.aes, algorithm: EncryptionAlgorithm.AES_GCM, keyMaterial: new Uint8Array(16) }),
  unwrap: (k, f) => k.unwrapKey({ keyId: f.aes, wrappedKey: f.wrapped }),
  data_key: (k, f) => k.generateDataKey({ keyId: f.aes, algorithm: EncryptionAlgorithm.AES_GCM, dataKeySpec: 2 }),
  public_key: (k, f) => k.getPublicKey({ keyId: f.ec }),
  re_encrypt: (k, f) =>
    k.reEncrypt({ keyId: f.aes, ciphertext: f.ciphertext, destinationAlgorithm: EncryptionAlgorithm.AES_GCM }),
};
const transitions: Record<string, Op> = {
  activate: (k, f) => k.activateKey({ keyId: f.aes }),
  deactivate: (k, f) => k.deactivateKey({ keyId: f.aes }),
  rotate: (k, f) => k.rotateKey({ keyId: f.aes }),
  compromise: (k, f) => k.compromiseKey({ keyId: f.aes }),
  schedule_destruction: (k, f) => k.scheduleKeyDestruction({ keyId: f.aes, waitingPeriod: seconds(7 * 86_400) }),
  cancel_destruction: (k, f) => k.cancelKeyDestruction({ keyId: f.aes }),
};

/** Which operations each state allows (everything else is refused). */
const allowed: Record<State, string[]> = {
  pre_active: ["public_key", "activate", "rotate", "compromise", "schedule_destruction"],
  active: [...Object.keys(operations), "deactivate", "rotate", "compromise", "schedule_destruction"],
  deactivated: [
    "verify",
    "decrypt",
    "verify_mac",
    "unwrap",
    "public_key",
    "activate",
    "rotate",
    "compromise",
    "schedule_destruction",
  ],
  compromised: ["schedule_destruction"],
  destruction_pending: ["compromise", "cancel_destruction"],
  destroyed: [],
};

const wireState: Record<State, number> = {
  pre_active: 1,
  active: 2,
  deactivated: 3,
  compromised: 4,
  destruction_pending: 5,
  destroyed: 6,
};

describe.each(databaseKinds)("the key state machine on %s", (kind) => {
  let t: TestBroker;
  let keys: KeyClient;

  beforeAll(async () => {
    t = await startTestBroker(kind, { AEGIS_KMS_JOB_INTERVAL_MS: "50", AEGIS_REQUEST_TIMEOUT_MS: "120000" });
    const admin = await createActor(t, { scopes: [...kmsAdminScopes, ...kmsUseScopes] });
    keys = t.client(KeyService, { key: admin.key });
  });
  afterAll(() => t.stop());

  /** Active keys and what they made, then moved into `state`. */
  async function fixture(state: State): Promise<Fixture> {
    const aes = await activeKey(keys, KeySpec.AES_256);
    const ec = await activeKey(keys, KeySpec.EC_P256);
    const hmac = await activeKey(keys, KeySpec.HMAC_SHA256);
    const f: Fixture = {
      aes,
      ec,
      hmac,
      ciphertext: (
        await keys.encrypt({ keyId: aes, algorithm: EncryptionAlgorithm.AES_GCM, plaintext: Buffer.from("p") })
      ).ciphertext,
      wrapped: (
        await keys.wrapKey({ keyId: aes, algorithm: EncryptionAlgorithm.AES_GCM, keyMaterial: new Uint8Array(16) })
      ).wrappedKey,
      signature: (await keys.sign({ keyId: ec, algorithm: SigningAlgorithm.ECDSA_SHA_256, input: message })).signature,
      mac: (await keys.generateMac({ keyId: hmac, algorithm: MacAlgorithm.HMAC_SHA_256, message: Buffer.from("m") }))
        .mac,
    };
    for (const keyId of [aes, ec, hmac]) {
      if (state === "pre_active") {
        // A key cannot go back to PRE_ACTIVE: make a fresh one with the same id's role.
        continue;
      }
      if (state === "deactivated") await keys.deactivateKey({ keyId });
      if (state === "compromised") await keys.compromiseKey({ keyId });
      if (state === "destruction_pending" || state === "destroyed") {
        await keys.scheduleKeyDestruction({ keyId, waitingPeriod: seconds(7 * 86_400) });
      }
    }
    if (state === "pre_active") {
      for (const spec of [KeySpec.AES_256, KeySpec.EC_P256, KeySpec.HMAC_SHA256] as const) {
        const { key } = await keys.createKey({ spec });
        if (spec === KeySpec.AES_256) f.aes = key?.id ?? "";
        if (spec === KeySpec.EC_P256) f.ec = key?.id ?? "";
        if (spec === KeySpec.HMAC_SHA256) f.hmac = key?.id ?? "";
      }
    }
    return f;
  }

  it("allows or refuses every operation in every state, naming the state", { timeout: 600_000 }, async () => {
    // Destroyed first: it needs the clock moved past its waiting period.
    const cells: [State, string, boolean, Code | undefined, string | undefined][] = [];
    for (const state of ["destroyed", ...states.filter((s) => s !== "destroyed")] as State[]) {
      // One set of keys for the operations (none changes a state); fresh keys
      // for each transition, so one cell's effect does not leak into the next.
      const shared = await fixture(state);
      const fresh = await Promise.all(Object.keys(transitions).map(() => fixture(state)));
      if (state === "destroyed") t.clock.advance(8 * day);
      expect((await keys.getKey({ keyId: shared.aes })).key?.state, `${state} fixture`).toBe(wireState[state]);
      const cases: [string, Op, Fixture][] = [
        ...Object.entries(operations).map(([name, op]): [string, Op, Fixture] => [name, op, shared]),
        ...Object.entries(transitions).map(([name, op], i): [string, Op, Fixture] => [name, op, fresh[i] as Fixture]),
      ];
      for (const [name, op, f] of cases) {
        const error = await failure(op(keys, f));
        cells.push([state, name, error === undefined, error?.code, reasonOf(error)]);
        if (error) expect(error.rawMessage, `${state} × ${name}`).toContain(state.toUpperCase());
      }
    }
    for (const [state, name, ok, code, reason] of cells) {
      const expected = allowed[state].includes(name);
      expect([state, name, ok], `${state} × ${name}: ${reason}`).toEqual([state, name, expected]);
      if (!ok) expect([state, name, code, reason]).toEqual([state, name, Code.FailedPrecondition, "KEY_STATE"]);
    }
    expect(cells).toHaveLength(states.length * (Object.keys(operations).length + Object.keys(transitions).length));
  });

  it("cancels a scheduled destruction before it passes, an active key coming back deactivated", async () => {
    const keyId = await activeKey(keys, KeySpec.AES_256);
    const tooShort = await failure(keys.scheduleKeyDestruction({ keyId, waitingPeriod: seconds(6 * 86_400) }));
    expect(tooShort?.code).toBe(Code.InvalidArgument);
    const { key } = await keys.scheduleKeyDestruction({ keyId });
    expect(key?.state).toBe(wireState.destruction_pending);
    expect(Number(key?.destroyTime?.seconds) * 1000 - t.clock.now().getTime()).toBeGreaterThan(29 * day);
    t.clock.advance(29 * day);
    expect((await keys.cancelKeyDestruction({ keyId })).key?.state).toBe(wireState.deactivated);
    expect((await keys.activateKey({ keyId })).key?.state).toBe(wireState.active);
  });

  it("keeps a compromised key compromised through a scheduled and cancelled destruction", async () => {
    const keyId = await activeKey(keys, KeySpec.AES_256);
    await keys.compromiseKey({ keyId, reason: "leaked" });
    await keys.scheduleKeyDestruction({ keyId });
    await keys.compromiseKey({ keyId });
    expect((await keys.cancelKeyDestruction({ keyId })).key?.state).toBe(wireState.compromised);
    for (const call of [
      () => keys.activateKey({ keyId }),
      () => keys.rotateKey({ keyId }),
      () => keys.encrypt({ keyId, algorithm: EncryptionAlgorithm.AES_GCM, plaintext: Buffer.from("p") }),
    ]) {
      const error = await failure(call());
      expect([error?.code, reasonOf(error)]).toEqual([Code.FailedPrecondition, "KEY_STATE"]);
    }
  });

  it("destroys the material once the waiting period passed, keeping the key's metadata and audit trail", async () => {
    const keyId = await activeKey(keys, KeySpec.AES_256);
    await keys.scheduleKeyDestruction({ keyId, waitingPeriod: seconds(7 * 86_400) });
    t.clock.advance(7 * day + 1);
    const prisma = t.db.database.prisma;
    await vi.waitFor(
      async () => {
        const key = await prisma.kmsKey.findUniqueOrThrow({ where: { id: keyId } });
        expect(key.destroyedAt).not.toBeNull();
      },
      { timeout: 20_000, interval: 50 },
    );
    const versions = await prisma.kmsKeyVersion.findMany({ where: { keyId } });
    expect(versions.map((v) => v.material)).toEqual([null]);
    expect((await keys.getKey({ keyId })).key?.state).toBe(wireState.destroyed);
    const events = await prisma.auditEvent.findMany({
      where: { target: { startsWith: keyId }, action: "kms.key.destroy" },
      orderBy: { seq: "asc" },
    });
    expect(events.map((e) => e.reason)).toEqual([
      expect.stringMatching(/^op=schedule_destruction/),
      expect.stringMatching(/material destroyed/),
    ]);
    const cancel = await failure(keys.cancelKeyDestruction({ keyId }));
    expect([cancel?.code, reasonOf(cancel)]).toEqual([Code.FailedPrecondition, "KEY_STATE"]);
  });

  it("rotates a key on its rotation period", async () => {
    const { key } = await keys.createKey({ spec: KeySpec.AES_256, activate: true, rotationPeriod: seconds(86_400) });
    const keyId = key?.id ?? "";
    const sealed = await keys.encrypt({ keyId, algorithm: EncryptionAlgorithm.AES_GCM, plaintext: Buffer.from("a") });
    expect((await failure(keys.updateKey({ keyId, rotationPeriod: seconds(60) })))?.code).toBe(Code.InvalidArgument);
    t.clock.advance(day + 1);
    await vi.waitFor(async () => expect((await keys.getKey({ keyId })).key?.currentVersion).toBe(2), {
      timeout: 20_000,
      interval: 50,
    });
    expect((await keys.decrypt({ keyId, ciphertext: sealed.ciphertext })).keyVersion).toBe(1);
  });
});
