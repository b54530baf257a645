// Which root of trust a broker runs on: AEGIS_ROOT_OF_TRUST=pkcs11 opens a
// real SoftHSM2 token at start, says so in its start log (never the PIN),
// serves over every transport, and logs out and finalises the module on stop.
import pino from "pino";
import pkcs11js from "pkcs11js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { ConfigError } from "../../src/core/config.js";
import { createLogger } from "../../src/core/log.js";
import { openPkcs11RootOfTrust } from "../../src/crypto/pkcs11-root-of-trust.js";
import { protocols, startTestBroker } from "../support/broker.js";
import { createTestDatabase, databaseKinds } from "../support/databases.js";
import { createSoftHsm, type SoftHsm, type SoftHsmToken, softHsmModule } from "../support/softhsm.js";

let hsm: SoftHsm;
const tokens = new Map<string, SoftHsmToken>();

beforeAll(async () => {
  // SoftHSM sees only the tokens that exist when it is initialised: make them all first.
  hsm = createSoftHsm();
  for (const kind of databaseKinds) tokens.set(kind, await hsm.token());
  tokens.set("wrong-pin", await hsm.token());
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

describe.each(databaseKinds)("root of trust on %s", (kind) => {
  it("starts on a PKCS#11 token, reports it, serves every transport and closes the session on stop", async () => {
    const token = tokens.get(kind) as SoftHsmToken;
    expect(moduleInUse()).toBe(false);
    const t = await startTestBroker(kind, token.env);
    try {
      const started = t.logs.map((line) => JSON.parse(line)).find((line) => line.rootOfTrust !== undefined);
      expect(started).toMatchObject({
        rootOfTrust: "pkcs11",
        module: softHsmModule,
        hsmToken: expect.stringContaining(`"${token.label}"`),
        keyLabel: token.keyLabel,
        sessions: 4,
      });
      for (const protocol of protocols) {
        const me = await t.client(PrincipalService, { protocol }).whoAmI({});
        expect(me.principal?.id).toBeTruthy();
      }
      expect(moduleInUse()).toBe(true);
      // The token is the broker's: a second root of trust on it is refused.
      await expect(openPkcs11RootOfTrust(token.config(), pino({ level: "silent" }))).rejects.toThrow(/already open/);
    } finally {
      await t.stop();
    }
    expect(moduleInUse()).toBe(false);
    expect(t.logs.join("\n")).not.toContain(token.pin);
  });

  it("runs on the local root key by default and says so", async () => {
    const t = await startTestBroker(kind);
    try {
      const started = t.logs.map((line) => JSON.parse(line)).find((line) => line.rootOfTrust !== undefined);
      expect(started).toMatchObject({ rootOfTrust: "local" });
    } finally {
      await t.stop();
    }
  });
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
  });
});
