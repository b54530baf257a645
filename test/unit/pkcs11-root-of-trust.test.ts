// The PKCS#11 root of trust against a real SoftHSM2 token: round trips bound
// to their context, tamper refusal, a key that never leaves the token,
// concurrent calls over the session pool, and clear start-up errors that
// never carry the PIN.
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import pino from "pino";
import pkcs11js from "pkcs11js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../src/core/config.js";
import { openPkcs11RootOfTrust, type Pkcs11RootOfTrust } from "../../src/crypto/pkcs11-root-of-trust.js";
import { localRootOfTrust, RootKey } from "../../src/crypto/root-key.js";
import { createSoftHsm, type SoftHsm, type SoftHsmToken, softHsmModule } from "../support/softhsm.js";

const silent = pino({ level: "silent" });

let hsm: SoftHsm;
let token: SoftHsmToken;
/** Tokens for the tests of opening, made first: SoftHSM sees only tokens that exist when it is initialised. */
let spare: Record<"wrongPin" | "keyless" | "createKey" | "weak" | "closing", SoftHsmToken>;
let rot: Pkcs11RootOfTrust;

beforeAll(async () => {
  hsm = createSoftHsm();
  token = await hsm.token();
  spare = {
    wrongPin: await hsm.token(),
    keyless: await hsm.token({ key: false }),
    createKey: await hsm.token({ key: false }),
    weak: await hsm.token({ key: false }),
    closing: await hsm.token(),
  };
  rot = await openPkcs11RootOfTrust(token.config(), silent);
});

afterAll(async () => {
  await rot?.close();
  hsm?.remove();
});

describe("PKCS#11 root of trust: wrap and unwrap", () => {
  it("unwraps what it wrapped under the same context, for material of any size", async () => {
    expect(rot.kind).toBe("pkcs11");
    for (const size of [1, 16, 32, 255, 4096]) {
      const material = randomBytes(size);
      const wrapped = await rot.wrap(material, `key:k1:v${size}`);
      expect(wrapped.length).toBe(2 + 12 + size + 16);
      expect([wrapped[0], wrapped[1]]).toEqual([0x50, 0x01]);
      expect(Buffer.from(await rot.unwrap(wrapped, `key:k1:v${size}`)).equals(material)).toBe(true);
    }
  });

  it("refuses to wrap nothing", async () => {
    await expect(rot.wrap(Buffer.alloc(0), "c")).rejects.toThrow(/no key material to wrap/);
  });

  it("keeps serving every session after a run of refusals", async () => {
    const wrapped = await rot.wrap(Buffer.from("material"), "c");
    for (let i = 0; i < 10; i++) await expect(rot.unwrap(wrapped, "other")).rejects.toThrow();
    const results = await Promise.all(Array.from({ length: 10 }, () => rot.unwrap(wrapped, "c")));
    expect(results.map((r) => Buffer.from(r).toString())).toEqual(Array(10).fill("material"));
  });

  it("never wraps the same material to the same bytes (a fresh IV each time)", async () => {
    const material = randomBytes(32);
    const [a, b] = await Promise.all([rot.wrap(material, "c"), rot.wrap(material, "c")]);
    expect(Buffer.from(a as Uint8Array).equals(Buffer.from(b as Uint8Array))).toBe(false);
    expect(Buffer.from(a as Uint8Array).includes(material)).toBe(false);
  });

  it("refuses another context", async () => {
    const wrapped = await rot.wrap(randomBytes(32), "tenant:t1:key:k1:v1");
    for (const other of ["tenant:t1:key:k1:v2", "tenant:t2:key:k1:v1", "", "tenant:t1:key:k1:v1 "]) {
      await expect(rot.unwrap(wrapped, other)).rejects.toThrow(/refused to unwrap \(CKR_[A-Z_]+\): wrong context/);
    }
  });

  it("refuses output with any byte flipped, truncated, extended or of another version", async () => {
    const wrapped = Buffer.from(await rot.wrap(randomBytes(32), "ctx"));
    for (let i = 0; i < wrapped.length; i++) {
      const flipped = Buffer.from(wrapped);
      flipped[i] = (flipped[i] as number) ^ 0x01;
      await expect(rot.unwrap(flipped, "ctx"), `byte ${i}`).rejects.toThrow();
    }
    await expect(rot.unwrap(wrapped.subarray(0, wrapped.length - 1), "ctx")).rejects.toThrow();
    await expect(rot.unwrap(wrapped.subarray(0, 29), "ctx")).rejects.toThrow(/not key material wrapped/);
    await expect(rot.unwrap(Buffer.concat([wrapped, Buffer.of(0)]), "ctx")).rejects.toThrow();
    const version2 = Buffer.from(wrapped);
    version2[1] = 0x02;
    await expect(rot.unwrap(version2, "ctx")).rejects.toThrow(/not key material wrapped/);
  });

  it("does not take the local root key's output, nor the local root key its output", async () => {
    const local = localRootOfTrust(new RootKey(randomBytes(32)));
    const material = randomBytes(32);
    await expect(rot.unwrap(await local.wrap(material, "c"), "c")).rejects.toThrow(/not key material wrapped/);
    await expect(local.unwrap(await rot.wrap(material, "c"), "c")).rejects.toThrow();
  });

  it("round-trips 200 concurrent wraps and unwraps over its sessions", async () => {
    const items = Array.from({ length: 200 }, (_, i) => ({ context: `key:${i}`, material: randomBytes(32 + (i % 7)) }));
    const wrapped = await Promise.all(items.map((item) => rot.wrap(item.material, item.context)));
    const unwrapped = await Promise.all(wrapped.map((bytes, i) => rot.unwrap(bytes, items[i]?.context as string)));
    unwrapped.forEach((bytes, i) => {
      expect(Buffer.from(bytes).equals(items[i]?.material as Buffer)).toBe(true);
    });
    // Mixed with refusals, every good call still succeeds.
    const mixed = await Promise.allSettled(wrapped.map((bytes, i) => rot.unwrap(bytes, i % 2 ? "wrong" : `key:${i}`)));
    expect(mixed.map((r) => r.status)).toEqual(wrapped.map((_, i) => (i % 2 ? "rejected" : "fulfilled")));
  });
});

describe("PKCS#11 root of trust: the key stays in the token", () => {
  it("refuses to reveal, export or unlock the key, even to a logged-in session of this process", async () => {
    // A second handle on the module the root of trust initialised: the same
    // application, so its sessions share the root of trust's login.
    const p = new pkcs11js.PKCS11();
    p.load(softHsmModule);
    expect(() => p.C_Initialize()).toThrow(/CKR_CRYPTOKI_ALREADY_INITIALIZED/);
    const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trimEnd() === token.label) as Buffer;
    const session = p.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    try {
      expect(p.C_GetSessionInfo(session).state).toBe(3); // CKS_RW_USER_FUNCTIONS: logged in
      p.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_LABEL, value: token.keyLabel }]);
      const [key] = p.C_FindObjects(session, 2);
      p.C_FindObjectsFinal(session);
      if (!key) throw new Error("the root-of-trust key is not on the token");

      expect(() => p.C_GetAttributeValue(session, key, [{ type: pkcs11js.CKA_VALUE }])).toThrow(
        /CKR_ATTRIBUTE_SENSITIVE/,
      );
      const flags = p.C_GetAttributeValue(session, key, [
        { type: pkcs11js.CKA_SENSITIVE },
        { type: pkcs11js.CKA_EXTRACTABLE },
        { type: pkcs11js.CKA_NEVER_EXTRACTABLE },
        { type: pkcs11js.CKA_ALWAYS_SENSITIVE },
      ]);
      expect(flags.map((a) => (a.value as Buffer)[0])).toEqual([1, 0, 1, 1]);

      const wrappingKey = p.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
        { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
        { type: pkcs11js.CKA_TOKEN, value: false },
        { type: pkcs11js.CKA_WRAP, value: true },
      ]);
      expect(() =>
        p.C_WrapKey(session, { mechanism: pkcs11js.CKM_AES_KEY_WRAP_PAD }, wrappingKey, key, Buffer.alloc(1024)),
      ).toThrow(/CKR_KEY_UNEXTRACTABLE/);
      expect(() => p.C_SetAttributeValue(session, key, [{ type: pkcs11js.CKA_EXTRACTABLE, value: true }])).toThrow(
        /CKR_ATTRIBUTE_READ_ONLY/,
      );
      expect(() => p.C_SetAttributeValue(session, key, [{ type: pkcs11js.CKA_SENSITIVE, value: false }])).toThrow(
        /CKR_ATTRIBUTE_READ_ONLY/,
      );
    } finally {
      p.C_CloseSession(session);
      p.close();
    }
    // The root of trust is untouched by all that.
    expect((await rot.unwrap(await rot.wrap(Buffer.from("still"), "c"), "c")).toString()).toBe("still");
  });
});

describe("PKCS#11 root of trust: opening and closing", () => {
  const expectConfigError = async (open: Promise<unknown>, variable: string, message: RegExp) => {
    const error = await open.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe(variable);
    expect((error as ConfigError).message).toMatch(message);
    return error as ConfigError;
  };

  it("refuses a wrong PIN with a clear error that shows neither PIN", async () => {
    const other = spare.wrongPin;
    const wrongPin = "wrong-pin-9f3a";
    const error = await expectConfigError(
      openPkcs11RootOfTrust(other.config({ AEGIS_PKCS11_PIN: wrongPin }), silent),
      "AEGIS_PKCS11_PIN",
      new RegExp(
        `^AEGIS_PKCS11_PIN: login to token "${other.label}" \\(slot \\d+\\) failed: the token refused the user PIN \\(CKR_PIN_INCORRECT\\)$`,
      ),
    );
    const everything = `${error.message}\n${error.stack}\n${JSON.stringify(error)}\n${String(error.cause)}`;
    expect(everything).not.toContain(wrongPin);
    expect(everything).not.toContain(other.pin);

    const pinFile = path.join(hsm.dir, "wrong.pin");
    writeFileSync(pinFile, `${wrongPin}\n`, { mode: 0o600 });
    const fromFile = await expectConfigError(
      openPkcs11RootOfTrust(other.config({ AEGIS_PKCS11_PIN: "", AEGIS_PKCS11_PIN_FILE: pinFile }), silent),
      "AEGIS_PKCS11_PIN_FILE",
      /CKR_PIN_INCORRECT/,
    );
    expect(fromFile.message).not.toContain(wrongPin);

    // The failed logins left nothing open: the right PIN, from a file, works.
    const goodFile = path.join(hsm.dir, "good.pin");
    writeFileSync(goodFile, `${other.pin}\n`, { mode: 0o600 });
    const opened = await openPkcs11RootOfTrust(
      other.config({ AEGIS_PKCS11_PIN: "", AEGIS_PKCS11_PIN_FILE: goodFile }),
      silent,
    );
    expect((await opened.unwrap(await opened.wrap(Buffer.from("x"), "c"), "c")).toString()).toBe("x");
    await opened.close();
  });

  it("names the missing module, token or key", async () => {
    await expectConfigError(
      openPkcs11RootOfTrust(token.config({ AEGIS_PKCS11_MODULE: "/nonexistent/libpkcs11.so" }), silent),
      "AEGIS_PKCS11_MODULE",
      /cannot load the PKCS#11 module \/nonexistent\/libpkcs11\.so/,
    );
    await expectConfigError(
      openPkcs11RootOfTrust(token.config({ AEGIS_PKCS11_TOKEN_LABEL: "no-such-token" }), silent),
      "AEGIS_PKCS11_TOKEN_LABEL",
      new RegExp(`no initialised token labelled "no-such-token" .*present: .*"${token.label}" \\(slot \\d+\\)`),
    );
    await expectConfigError(
      openPkcs11RootOfTrust(token.config({ AEGIS_PKCS11_TOKEN_LABEL: "", AEGIS_PKCS11_SLOT: "4242" }), silent),
      "AEGIS_PKCS11_SLOT",
      /no initialised token in slot 4242/,
    );
    const keyless = spare.keyless;
    await expectConfigError(
      openPkcs11RootOfTrust(keyless.config(), silent),
      "AEGIS_PKCS11_KEY_LABEL",
      new RegExp(
        `token "${keyless.label}" \\(slot \\d+\\) has no AES secret key labelled "${keyless.keyLabel}".*AEGIS_PKCS11_CREATE_KEY=true`,
      ),
    );
  });

  it("creates the key at start only when asked, and refuses a second root of trust on an open token", async () => {
    const keyless = spare.createKey;
    const lines: string[] = [];
    const log = pino({ level: "info" }, { write: (line: string) => lines.push(line) });
    const created = await openPkcs11RootOfTrust(keyless.config({ AEGIS_PKCS11_CREATE_KEY: "true" }), log);
    expect(lines.join("")).toMatch(/created a new AES-256 root-of-trust key/);
    const wrapped = await created.wrap(Buffer.from("material"), "c");
    await expectConfigError(
      openPkcs11RootOfTrust(keyless.config(), silent),
      "AEGIS_PKCS11_TOKEN_LABEL",
      /is already open in this process/,
    );
    await created.close();
    // The key was stored in the token: a later start finds it, and unwraps.
    const reopened = await openPkcs11RootOfTrust(keyless.config({ AEGIS_PKCS11_CREATE_KEY: "true" }), silent);
    expect((await reopened.unwrap(wrapped, "c")).toString()).toBe("material");
    await reopened.close();
  });

  it("refuses a token key that could leave the token", async () => {
    const weak = spare.weak;
    const p = new pkcs11js.PKCS11();
    p.load(softHsmModule);
    expect(() => p.C_Initialize()).toThrow(/CKR_CRYPTOKI_ALREADY_INITIALIZED/);
    const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trimEnd() === weak.label) as Buffer;
    const session = p.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    p.C_Login(session, pkcs11js.CKU_USER, weak.pin);
    p.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
      { type: pkcs11js.CKA_LABEL, value: weak.keyLabel },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: false },
      { type: pkcs11js.CKA_EXTRACTABLE, value: true },
      { type: pkcs11js.CKA_ENCRYPT, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: true },
    ]);
    p.C_Logout(session);
    p.C_CloseSession(session);
    p.close();
    await expectConfigError(
      openPkcs11RootOfTrust(weak.config(), silent),
      "AEGIS_PKCS11_KEY_LABEL",
      /cannot be the root of trust: it is not CKA_SENSITIVE, it is CKA_EXTRACTABLE/,
    );
  });

  it("finishes calls in flight on close, then refuses new ones", async () => {
    const other = spare.closing;
    const opened = await openPkcs11RootOfTrust(other.config({ AEGIS_PKCS11_SESSIONS: "2" }), silent);
    const wrapped = await opened.wrap(Buffer.from("kept"), "c");
    const inFlight = Array.from({ length: 20 }, (_, i) => opened.wrap(randomBytes(32), `c${i}`));
    const closed = opened.close();
    const results = await Promise.allSettled(inFlight);
    await closed;
    expect(results.every((r) => r.status === "fulfilled")).toBe(true);
    await expect(opened.wrap(randomBytes(32), "c")).rejects.toThrow(/closed/);
    // Its token is free again; here it is chosen by slot id instead of label.
    const slot = /\(slot (\d+)\)/.exec(opened.description.hsmToken)?.[1] as string;
    const again = await openPkcs11RootOfTrust(
      other.config({ AEGIS_PKCS11_TOKEN_LABEL: "", AEGIS_PKCS11_SLOT: slot }),
      silent,
    );
    expect(again.description.hsmToken).toBe(opened.description.hsmToken);
    expect((await again.unwrap(wrapped, "c")).toString()).toBe("kept");
    await again.close();
  });
});
