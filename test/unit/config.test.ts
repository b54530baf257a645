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
  ])("names the variable for %o", (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
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
