// Which root of trust a broker runs on: AEGIS_ROOT_OF_TRUST=pkcs11 opens a
// real SoftHSM2 token at start, says so in its start log (never the PIN),
// serves over every transport, and logs out and finalises the module on stop;
// `aegis hsm init-key` creates the token's key.
import pino from "pino";
import pkcs11js from "pkcs11js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { ConfigError } from "../../src/core/config.js";
import { createLogger } from "../../src/core/log.js";
import { openPkcs11RootOfTrust } from "../../src/crypto/pkcs11-root-of-trust.js";
import { protocols, startTestBroker, type TestBroker } from "../support/broker.js";
import { runAegis } from "../support/cli.js";
import { createTestDatabase, databaseKinds } from "../support/databases.js";
import { createSoftHsm, type SoftHsm, type SoftHsmToken, softHsmModule } from "../support/softhsm.js";

let hsm: SoftHsm;
const tokens = new Map<string, SoftHsmToken>();

beforeAll(async () => {
  // SoftHSM sees only the tokens that exist when it is initialised: make them all first.
  hsm = createSoftHsm();
  for (const kind of databaseKinds) tokens.set(kind, await hsm.token());
  tokens.set("wrong-pin", await hsm.token());
  tokens.set("cli", await hsm.token({ key: false }));
});

afterAll(() => hsm?.remove());

/** Whether this process holds the module initialised (a broker's root of trust does). */
function moduleInUse(): boolean {
  const p = new pkcs11js.PKCS11();
  p.load(softHsmModule);
  try {
    p.C_Initialize();
    p.C_Finalize();
    return false;
  } catch (error) {
    if (/CKR_CRYPTOKI_ALREADY_INITIALIZED/.test(String(error))) return true;
    throw error;
  } finally {
    p.close();
  }
}

describe.each(databaseKinds)("a broker on a PKCS#11 root of trust, on %s", (kind) => {
  let token: SoftHsmToken;
  let t: TestBroker;
  let stopped = false;

  beforeAll(async () => {
    token = tokens.get(kind) as SoftHsmToken;
    expect(moduleInUse()).toBe(false);
    t = await startTestBroker(kind, token.env);
  });

  afterAll(async () => {
    if (!stopped) await t?.stop();
  });

  it("names the root of trust in its start log, never the PIN", () => {
    const started = t.logs.map((line) => JSON.parse(line)).find((line) => line.rootOfTrust !== undefined);
    expect(started).toMatchObject({
      rootOfTrust: "pkcs11",
      module: softHsmModule,
      hsmToken: expect.stringContaining(`"${token.label}"`),
      keyLabel: token.keyLabel,
      sessions: 4,
    });
    expect(t.logs.join("\n")).not.toContain(token.pin);
  });

  it("serves every transport", async () => {
    for (const protocol of protocols) {
      const me = await t.client(PrincipalService, { protocol }).whoAmI({});
      expect(me.principal?.id).toBeTruthy();
    }
  });

  it("holds the token while it runs", async () => {
    expect(moduleInUse()).toBe(true);
    await expect(openPkcs11RootOfTrust(token.config(), pino({ level: "silent" }))).rejects.toThrow(/already open/);
  });

  it("logs out, closes its sessions and finalises the module on stop", async () => {
    stopped = true;
    await t.stop();
    expect(moduleInUse()).toBe(false);
    expect(t.logs.join("\n")).not.toContain(token.pin);
  });
});

describe.each(databaseKinds)("a broker on the local root key, on %s", (kind) => {
  it("is the default, and says so in its start log", async () => {
    const t = await startTestBroker(kind);
    try {
      const started = t.logs.map((line) => JSON.parse(line)).find((line) => line.rootOfTrust !== undefined);
      expect(started).toMatchObject({ rootOfTrust: "local" });
    } finally {
      await t.stop();
    }
  }, 90_000);
});

describe("root of trust start-up", () => {
  it("redacts the PIN should a configuration object reach a log line", () => {
    const token = tokens.get("wrong-pin") as SoftHsmToken;
    const lines: string[] = [];
    const log = createLogger("info", { write: (line: string) => lines.push(line) });
    log.info({ rootOfTrust: token.config() }, "configuration");
    log.info({ config: { rootOfTrust: token.config() } }, "configuration");
    expect(lines).toHaveLength(2);
    expect(lines.join("")).toContain(token.keyLabel);
    expect(lines.join("")).not.toContain(token.pin);
  });

  it("refuses to start with a wrong PIN, naming the variable and not the PIN", async () => {
    const token = tokens.get("wrong-pin") as SoftHsmToken;
    const db = await createTestDatabase("pglite");
    const wrongPin = "not-the-pin-4410";
    const error = await startTestBroker("pglite", { ...token.env, AEGIS_PKCS11_PIN: wrongPin }, db).then(
      () => undefined,
      (e: unknown) => e,
    );
    await db.drop();
    expect(error).toBeInstanceOf(ConfigError);
    expect(String(error)).toMatch(
      /^ConfigError: AEGIS_PKCS11_PIN: login to token .* failed: the token refused the user PIN/,
    );
    expect(String(error)).not.toContain(wrongPin);
    expect(moduleInUse()).toBe(false);
  }, 90_000);
});

describe("aegis hsm init-key", () => {
  // Each run is a real `aegis` process (Node start-up and module load each).
  const processes = { timeout: 90_000 };
  const run = async (env: Record<string, string>) => {
    const cli = runAegis(["hsm", "init-key"], env);
    return { code: await cli.closed, stdout: cli.stdout(), stderr: cli.stderr() };
  };

  it("creates the token's key once, then leaves it", processes, async () => {
    const token = tokens.get("cli") as SoftHsmToken;
    const first = await run(token.env);
    expect(first).toMatchObject({ code: 0, stderr: "" });
    expect(first.stdout).toMatch(
      new RegExp(`^created AES-256 key "${token.keyLabel}" on token "${token.label}" \\(slot \\d+\\)\n$`),
    );
    const second = await run(token.env);
    expect(second).toMatchObject({ code: 0, stderr: "" });
    expect(second.stdout).toMatch(/already has key "aegis-root-of-trust"; left as it is/);
    // The key it made is one the broker takes.
    const opened = await openPkcs11RootOfTrust(token.config(), pino({ level: "silent" }));
    await opened.close();
  });

  it("exits 2 on a wrong PIN without showing it, and without AEGIS_ROOT_OF_TRUST=pkcs11", processes, async () => {
    const token = tokens.get("wrong-pin") as SoftHsmToken;
    const wrongPin = "not-the-pin-5521";
    const refused = await run({ ...token.env, AEGIS_PKCS11_PIN: wrongPin });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /^aegis: configuration error: AEGIS_PKCS11_PIN: login to token .* \(CKR_PIN_INCORRECT\)\n$/,
    );
    expect(refused.stdout + refused.stderr).not.toContain(wrongPin);
    const local = await run({});
    expect(local.code).toBe(2);
    expect(local.stderr).toMatch(/AEGIS_ROOT_OF_TRUST: must be pkcs11/);
  });
});
