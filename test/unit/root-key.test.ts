import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/core/config.js";
import { keyPurposes } from "../../src/core/key-purposes.js";
import { loadRootKey, localRootOfTrust, RootKey } from "../../src/crypto/root-key.js";

const silent = pino({ level: "silent" });

describe("RootKey", () => {
  const key = new RootKey(randomBytes(32));

  it("opens what it sealed, with the same context", () => {
    const sealed = key.seal(Buffer.from("signing key material"), "signing-key:k1");
    expect(key.open(sealed, "signing-key:k1").toString()).toBe("signing key material");
  });

  it("refuses another context, a modified ciphertext and another key", () => {
    const sealed = key.seal(Buffer.from("secret"), "a");
    expect(() => key.open(sealed, "b")).toThrow();
    const flipped = Buffer.from(sealed);
    flipped[flipped.length - 1] = (flipped.at(-1) as number) ^ 1;
    expect(() => key.open(flipped, "a")).toThrow();
    expect(() => new RootKey(randomBytes(32)).open(sealed, "a")).toThrow();
  });

  it("derives a distinct, stable key for every named purpose", () => {
    const keys = Object.values(keyPurposes).map((purpose) => key.deriveKey(purpose).toString("hex"));
    expect(new Set(keys).size).toBe(keys.length);
    expect(key.deriveKey(keyPurposes.apiKeyHash).equals(key.deriveKey(keyPurposes.apiKeyHash))).toBe(true);
  });

  it("never shows its key when logged or inspected", () => {
    expect(JSON.stringify({ key })).toBe('{"key":"[RootKey]"}');
  });
});

describe("localRootOfTrust", () => {
  const key = new RootKey(randomBytes(32));
  const local = localRootOfTrust(key);

  it("unwraps what it wrapped under the same context", async () => {
    expect(local.kind).toBe("local");
    const material = randomBytes(32);
    const wrapped = await local.wrap(material, "tenant:t1:key:k1:v1");
    expect(Buffer.from(wrapped).includes(material)).toBe(false);
    expect(Buffer.from(await local.unwrap(wrapped, "tenant:t1:key:k1:v1")).equals(material)).toBe(true);
  });

  it("is bound to its context, its bytes and its root key", async () => {
    const wrapped = await local.wrap(randomBytes(32), "tenant:t1:key:k1:v1");
    await expect(local.unwrap(wrapped, "tenant:t1:key:k1:v2")).rejects.toThrow();
    const flipped = Buffer.from(wrapped);
    flipped[20] = (flipped[20] as number) ^ 1;
    await expect(local.unwrap(flipped, "tenant:t1:key:k1:v1")).rejects.toThrow();
    await expect(
      localRootOfTrust(new RootKey(randomBytes(32))).unwrap(wrapped, "tenant:t1:key:k1:v1"),
    ).rejects.toThrow();
  });

  it("keeps key material apart from the root key's other sealed values", async () => {
    // Wrapped material is sealed under "kms:<context>": a broker secret sealed
    // under the bare context cannot be passed off as key material, nor the reverse.
    const wrapped = await local.wrap(randomBytes(32), "signing-key:k1");
    expect(() => key.open(wrapped, "signing-key:k1")).toThrow();
    await expect(local.unwrap(key.seal(randomBytes(32), "signing-key:k1"), "signing-key:k1")).rejects.toThrow();
  });
});

describe("loadRootKey", () => {
  it("generates a 0600 key file in the embedded data dir on first start and reuses it", () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "aegis-rk-"));
    const config = loadConfig({ AEGIS_DATA_DIR: dataDir });
    const first = loadRootKey(config, silent);
    const file = path.join(dataDir, "root.key");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const second = loadRootKey(config, silent);
    expect(first.deriveKey(keyPurposes.auditChain).equals(second.deriveKey(keyPurposes.auditChain))).toBe(true);
    expect(readFileSync(file, "utf8").trim()).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it("refuses to start on PostgreSQL without a root key", () => {
    const config = loadConfig({ AEGIS_DATABASE_URL: "postgres://localhost/x", AEGIS_PUBLIC_URL: "https://aegis.test" });
    expect(() => loadRootKey(config, silent)).toThrow(ConfigError);
    expect(() => loadRootKey(config, silent)).toThrow(/AEGIS_ROOT_KEY: required with AEGIS_DATABASE_URL/);
  });

  it.each([
    ["short", "abc"],
    ["not base64url", `${"!".repeat(43)}`],
    ["too long", randomBytes(48).toString("base64url")],
  ])("names AEGIS_ROOT_KEY when it is %s", (_, value) => {
    expect(() => loadRootKey(loadConfig({ AEGIS_ROOT_KEY: value }), silent)).toThrow(/^AEGIS_ROOT_KEY: must be 32/);
  });
});
