// A SoftHSM2 of the test file's own: a temporary token directory and
// softhsm2.conf (SOFTHSM2_CONF, read by the module at C_Initialize), fresh
// tokens made with softhsm2-util, and their AES key made by the broker's own
// PKCS#11 code. Needs Debian's softhsm2 (test/support/ensure-softhsm.sh).
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadConfig, type Pkcs11Config } from "../../src/core/config.js";
import { createPkcs11Key } from "../../src/crypto/pkcs11-root-of-trust.js";

export const softHsmModule = "/usr/lib/softhsm/libsofthsm2.so";

export interface SoftHsmToken {
  readonly label: string;
  readonly pin: string;
  readonly keyLabel: string;
  /** The AEGIS_* variables that select this token and key. */
  readonly env: Record<string, string>;
  /** The parsed PKCS#11 configuration for `env` with `overrides` on top. */
  config(overrides?: Record<string, string>): Pkcs11Config;
}

export interface SoftHsm {
  readonly dir: string;
  /** Initialises a fresh token; with `key` (default) also its AES-256 root-of-trust key. */
  token(options?: { key?: boolean }): Promise<SoftHsmToken>;
  remove(): void;
}

/** One per test file: the SoftHSM module sees only the directory of the last one made. */
export function createSoftHsm(): SoftHsm {
  const dir = mkdtempSync(path.join(tmpdir(), "aegis-softhsm-"));
  const tokens = path.join(dir, "tokens");
  mkdirSync(tokens);
  const conf = path.join(dir, "softhsm2.conf");
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  process.env.SOFTHSM2_CONF = conf;
  let made = 0;
  return {
    dir,
    async token(options = {}) {
      const label = `aegis-test-${++made}`;
      const pin = randomBytes(6).toString("hex");
      const keyLabel = "aegis-root-of-trust";
      execFileSync(
        "softhsm2-util",
        ["--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", randomBytes(6).toString("hex")],
        { env: { ...process.env, SOFTHSM2_CONF: conf }, stdio: "pipe" },
      );
      const env = {
        AEGIS_ROOT_OF_TRUST: "pkcs11",
        AEGIS_PKCS11_MODULE: softHsmModule,
        AEGIS_PKCS11_TOKEN_LABEL: label,
        AEGIS_PKCS11_PIN: pin,
        AEGIS_PKCS11_KEY_LABEL: keyLabel,
      };
      const config = (overrides: Record<string, string> = {}) => {
        const rootOfTrust = loadConfig({ ...env, ...overrides }).rootOfTrust;
        if (rootOfTrust.kind !== "pkcs11") throw new Error("not a PKCS#11 configuration");
        return rootOfTrust;
      };
      if (options.key !== false) await createPkcs11Key(config());
      return { label, pin, keyLabel, env, config };
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
