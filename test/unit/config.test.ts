import { availableParallelism } from "node:os";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/core/config.js";

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
});
