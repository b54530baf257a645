import { availableParallelism } from "node:os";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/core/config.js";

describe("loadConfig", () => {
  it("has documented defaults", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      host: "127.0.0.1",
      port: 8080,
      publicUrl: "http://127.0.0.1:8080",
      databaseUrl: undefined,
      tls: undefined,
      logLevel: "info",
      maxMessageBytes: 1048576,
      requestTimeoutMs: 30000,
      shutdownGraceMs: 10000,
      headersTimeoutMs: 20000,
      keepAliveTimeoutMs: 5000,
      workers: 1,
    });
    expect(config.dataDir.endsWith("/data")).toBe(true);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it.each([
    [{ AEGIS_PORT: "eighty" }, /^AEGIS_PORT: must be a whole number/],
    [{ AEGIS_PORT: "70000" }, /^AEGIS_PORT: must be between 0 and 65535/],
    [{ AEGIS_DATABASE_URL: "mysql://x" }, /^AEGIS_DATABASE_URL: must start with postgres/],
    [{ AEGIS_TLS_CERT_FILE: "/c.pem" }, /^AEGIS_TLS_KEY_FILE: TLS needs both/],
    [{ AEGIS_LOG_LEVEL: "loud" }, /^AEGIS_LOG_LEVEL: must be one of/],
    [{ AEGIS_PUBLIC_URL: "ftp://x" }, /^AEGIS_PUBLIC_URL: must be an http/],
    [{ AEGIS_PUBLIC_URL: "https://x/?a=1" }, /^AEGIS_PUBLIC_URL: must not have a query/],
    [{ AEGIS_MAX_MESSAGE_BYTES: "10" }, /^AEGIS_MAX_MESSAGE_BYTES: must be between/],
    [{ AEGIS_ROOT_KEY: "a", AEGIS_ROOT_KEY_FILE: "/k" }, /^AEGIS_ROOT_KEY: set AEGIS_ROOT_KEY or AEGIS_ROOT_KEY_FILE/],
    [{ AEGIS_WORKERS: "0" }, /^AEGIS_WORKERS: must be between 1 and 64/],
    [{ AEGIS_WORKERS: "many" }, /^AEGIS_WORKERS: must be a whole number or auto/],
    [{ AEGIS_HTTP_HEADERS_TIMEOUT_MS: "10" }, /^AEGIS_HTTP_HEADERS_TIMEOUT_MS: must be between/],
    [{ AEGIS_HTTP_KEEP_ALIVE_TIMEOUT_MS: "900000" }, /^AEGIS_HTTP_KEEP_ALIVE_TIMEOUT_MS: must be between/],
    [{ AEGIS_TRUSTED_PROXIES: "10.0.0.0/8, lb.internal" }, /^AEGIS_TRUSTED_PROXIES: "lb.internal" is not an address/],
  ])("names the variable for %o", (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });

  describe("refuses what cannot work together", () => {
    const postgres = { AEGIS_DATABASE_URL: "postgres://db/aegis" };

    it("needs AEGIS_PUBLIC_URL on PostgreSQL, where instances must agree on one", () => {
      expect(() => loadConfig(postgres)).toThrow(/^AEGIS_PUBLIC_URL: required with AEGIS_DATABASE_URL/);
      expect(loadConfig({ ...postgres, AEGIS_PUBLIC_URL: "https://aegis.example.com" }).publicUrl).toBe(
        "https://aegis.example.com",
      );
    });

    it("leaves migrations and the workers of one broker free of it", () => {
      // `aegis migrate` answers no client; a worker's environment is its primary's, checked there.
      expect(loadConfig(postgres, "migrate").databaseUrl).toBe("postgres://db/aegis");
      expect(loadConfig(postgres, "worker").publicUrl).toBe("http://127.0.0.1:8080");
    });

    it("shares the security limits on PostgreSQL, not among the workers of the embedded database", () => {
      expect(loadConfig({}).sharedRateLimits).toBe(false);
      expect(loadConfig({ ...postgres, AEGIS_PUBLIC_URL: "https://a.test" }).sharedRateLimits).toBe(true);
      expect(loadConfig(postgres, "worker").sharedRateLimits).toBe(true);
      const embeddedWorker = { ...postgres, AEGIS_WORKER_OF_EMBEDDED_DATABASE: "1" };
      expect(loadConfig(embeddedWorker, "worker").sharedRateLimits).toBe(false);
      // Only the primary's word counts: an operator's setting on serve changes nothing.
      expect(loadConfig({ ...embeddedWorker, AEGIS_PUBLIC_URL: "https://a.test" }).sharedRateLimits).toBe(true);
    });

    it("keeps the embedded database's derived public URL", () => {
      expect(loadConfig({ AEGIS_PORT: "9000" }).publicUrl).toBe("http://127.0.0.1:9000");
    });

    it("refuses a metrics listener on the broker's own port", () => {
      expect(() => loadConfig({ AEGIS_PORT: "9000", AEGIS_METRICS_ADDRESS: "127.0.0.1:9000" })).toThrow(
        /^AEGIS_METRICS_ADDRESS: must use another port than AEGIS_PORT \(9000\)/,
      );
      expect(loadConfig({ AEGIS_PORT: "0", AEGIS_METRICS_ADDRESS: ":0" }).metricsAddress?.port).toBe(0);
    });
  });

  it("runs one worker per usable core for AEGIS_WORKERS=auto", () => {
    expect(loadConfig({ AEGIS_WORKERS: "auto" }).workers).toBe(Math.min(availableParallelism(), 64));
    expect(loadConfig({ AEGIS_WORKERS: "3" }).workers).toBe(3);
  });

  it("derives the public URL from TLS and accepts an explicit one", () => {
    expect(loadConfig({ AEGIS_TLS_CERT_FILE: "/c", AEGIS_TLS_KEY_FILE: "/k", AEGIS_PORT: "443" }).publicUrl).toBe(
      "https://127.0.0.1",
    );
    expect(loadConfig({ AEGIS_PUBLIC_URL: "https://aegis.example.com/" }).publicUrl).toBe("https://aegis.example.com");
  });

  describe("root of trust", () => {
    const pkcs11 = {
      AEGIS_ROOT_OF_TRUST: "pkcs11",
      AEGIS_PKCS11_MODULE: "/usr/lib/softhsm/libsofthsm2.so",
      AEGIS_PKCS11_TOKEN_LABEL: "aegis",
      AEGIS_PKCS11_PIN: "1234",
      AEGIS_PKCS11_KEY_LABEL: "aegis-root-of-trust",
    };

    it("is the local root key by default", () => {
      expect(loadConfig({}).rootOfTrust).toEqual({ kind: "local" });
      expect(loadConfig({ AEGIS_ROOT_OF_TRUST: "local" }).rootOfTrust).toEqual({ kind: "local" });
    });

    it("reads a PKCS#11 token by label or slot, with a PIN or PIN file, and documented defaults", () => {
      const config = loadConfig(pkcs11);
      expect(config.rootOfTrust).toEqual({
        kind: "pkcs11",
        module: "/usr/lib/softhsm/libsofthsm2.so",
        tokenLabel: "aegis",
        slot: undefined,
        pin: "1234",
        pinFile: undefined,
        keyLabel: "aegis-root-of-trust",
        createKey: false,
        sessions: 4,
      });
      expect(Object.isFrozen(config.rootOfTrust)).toBe(true);
      expect(
        loadConfig({
          ...pkcs11,
          AEGIS_PKCS11_TOKEN_LABEL: "",
          AEGIS_PKCS11_SLOT: "1556815345",
          AEGIS_PKCS11_PIN: "",
          AEGIS_PKCS11_PIN_FILE: "/run/secrets/pin",
          AEGIS_PKCS11_CREATE_KEY: "true",
          AEGIS_PKCS11_SESSIONS: "8",
        }).rootOfTrust,
      ).toMatchObject({
        slot: 1556815345,
        tokenLabel: undefined,
        pinFile: "/run/secrets/pin",
        createKey: true,
        sessions: 8,
      });
    });

    it.each([
      [{ AEGIS_ROOT_OF_TRUST: "kms" }, /^AEGIS_ROOT_OF_TRUST: must be one of local, pkcs11, got "kms"/],
      [{ ...pkcs11, AEGIS_PKCS11_MODULE: "" }, /^AEGIS_PKCS11_MODULE: required with AEGIS_ROOT_OF_TRUST=pkcs11/],
      [{ ...pkcs11, AEGIS_PKCS11_MODULE: "libsofthsm2.so" }, /^AEGIS_PKCS11_MODULE: must be the absolute path/],
      [
        { ...pkcs11, AEGIS_PKCS11_TOKEN_LABEL: "" },
        /^AEGIS_PKCS11_TOKEN_LABEL: set AEGIS_PKCS11_TOKEN_LABEL or AEGIS_PKCS11_SLOT/,
      ],
      [
        { ...pkcs11, AEGIS_PKCS11_SLOT: "1" },
        /^AEGIS_PKCS11_TOKEN_LABEL: set AEGIS_PKCS11_TOKEN_LABEL or AEGIS_PKCS11_SLOT \(exactly one\)/,
      ],
      [
        { ...pkcs11, AEGIS_PKCS11_TOKEN_LABEL: "x".repeat(33) },
        /^AEGIS_PKCS11_TOKEN_LABEL: a token label is at most 32 bytes/,
      ],
      [
        { ...pkcs11, AEGIS_PKCS11_TOKEN_LABEL: "", AEGIS_PKCS11_SLOT: "-1" },
        /^AEGIS_PKCS11_SLOT: must be a whole number/,
      ],
      [{ ...pkcs11, AEGIS_PKCS11_PIN: "" }, /^AEGIS_PKCS11_PIN: set AEGIS_PKCS11_PIN or AEGIS_PKCS11_PIN_FILE/],
      [
        { ...pkcs11, AEGIS_PKCS11_PIN_FILE: "/p" },
        /^AEGIS_PKCS11_PIN: set AEGIS_PKCS11_PIN or AEGIS_PKCS11_PIN_FILE \(exactly one\)/,
      ],
      [{ ...pkcs11, AEGIS_PKCS11_KEY_LABEL: "" }, /^AEGIS_PKCS11_KEY_LABEL: required with AEGIS_ROOT_OF_TRUST=pkcs11/],
      [{ ...pkcs11, AEGIS_PKCS11_CREATE_KEY: "yes" }, /^AEGIS_PKCS11_CREATE_KEY: must be true or false/],
      [{ ...pkcs11, AEGIS_PKCS11_SESSIONS: "0" }, /^AEGIS_PKCS11_SESSIONS: must be between 1 and 64/],
      [
        { AEGIS_PKCS11_MODULE: "/usr/lib/softhsm/libsofthsm2.so" },
        /^AEGIS_PKCS11_MODULE: is set but AEGIS_ROOT_OF_TRUST is not pkcs11/,
      ],
      [
        { ...pkcs11, AEGIS_ROOT_OF_TRUST: "local" },
        /^AEGIS_PKCS11_MODULE: is set but AEGIS_ROOT_OF_TRUST is not pkcs11/,
      ],
    ])("names the variable for %o", (env, message) => {
      expect(() => loadConfig(env)).toThrow(message);
    });

    it("never puts the PIN in a configuration error", () => {
      const pin = "s3cret-pin-7731";
      for (const env of [
        { ...pkcs11, AEGIS_PKCS11_PIN: pin, AEGIS_PKCS11_PIN_FILE: "/p" },
        { ...pkcs11, AEGIS_PKCS11_PIN: pin, AEGIS_PKCS11_MODULE: "" },
        { AEGIS_PKCS11_PIN: pin },
      ]) {
        expect(() => loadConfig(env)).toThrow(ConfigError);
        try {
          loadConfig(env);
        } catch (error) {
          expect(String(error)).not.toContain(pin);
        }
      }
    });
  });
});
