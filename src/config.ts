// Broker configuration: read from the environment once at start-up, checked
// in full, and frozen. Nothing else in the broker reads `process.env`.
//
// A bad value stops start-up with a ConfigError naming the variable and what
// is wrong with it, so an operator never finds out at the first request.
import path from "node:path";

export interface Config {
  /** Interface to listen on. */
  readonly host: string;
  /** TCP port; 0 picks a free one (tests). */
  readonly port: number;
  /** URL clients use to reach the broker; DPoP `htu` and OAuth metadata derive from it. */
  readonly publicUrl: string;
  /** Directory for the embedded database and a generated root key. */
  readonly dataDir: string;
  /** PostgreSQL URL; undefined selects the embedded PGlite database in `dataDir`. */
  readonly databaseUrl: string | undefined;
  /** Root key material as given (base64url of 32 bytes), or undefined. */
  readonly rootKey: string | undefined;
  /** File holding the root key, or undefined. */
  readonly rootKeyFile: string | undefined;
  /** TLS certificate and key files; both or neither. */
  readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined;
  readonly logLevel: LogLevel;
  /** Largest request or response message, in bytes. */
  readonly maxMessageBytes: number;
  /** Deadline applied to unary calls that carry none; also the largest a client may ask for. */
  readonly requestTimeoutMs: number;
  /** How long shutdown waits for in-flight calls before closing connections. */
  readonly shutdownGraceMs: number;
  /** Where to write the one-time bootstrap credential; undefined prints it to stdout. */
  readonly bootstrapCredentialFile: string | undefined;
}

export const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof logLevels)[number];

export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** Reads and checks the whole configuration; throws ConfigError on the first bad value. */
export function loadConfig(env: Env = process.env): Config {
  const read = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === "" ? undefined : value;
  };

  const host = read("AEGIS_HOST") ?? "127.0.0.1";
  const port = integer(read, "AEGIS_PORT", 8080, 0, 65535);

  const certFile = read("AEGIS_TLS_CERT_FILE");
  const keyFile = read("AEGIS_TLS_KEY_FILE");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError(
      certFile ? "AEGIS_TLS_KEY_FILE" : "AEGIS_TLS_CERT_FILE",
      "TLS needs both AEGIS_TLS_CERT_FILE and AEGIS_TLS_KEY_FILE",
    );
  }
  const tls = certFile && keyFile ? { certFile, keyFile } : undefined;

  const scheme = tls ? "https" : "http";
  const publicUrl = url(read, "AEGIS_PUBLIC_URL", `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}`);

  const databaseUrl = read("AEGIS_DATABASE_URL");
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError("AEGIS_DATABASE_URL", "must start with postgres:// or postgresql://");
  }

  const rootKey = read("AEGIS_ROOT_KEY");
  const rootKeyFile = read("AEGIS_ROOT_KEY_FILE");
  if (rootKey && rootKeyFile) {
    throw new ConfigError("AEGIS_ROOT_KEY", "set AEGIS_ROOT_KEY or AEGIS_ROOT_KEY_FILE, not both");
  }

  const logLevel = read("AEGIS_LOG_LEVEL") ?? "info";
  if (!(logLevels as readonly string[]).includes(logLevel)) {
    throw new ConfigError("AEGIS_LOG_LEVEL", `must be one of ${logLevels.join(", ")}`);
  }

  return Object.freeze({
    host,
    port,
    publicUrl,
    dataDir: path.resolve(read("AEGIS_DATA_DIR") ?? "data"),
    databaseUrl,
    rootKey,
    rootKeyFile,
    tls: tls && Object.freeze(tls),
    logLevel: logLevel as LogLevel,
    maxMessageBytes: integer(read, "AEGIS_MAX_MESSAGE_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024),
    requestTimeoutMs: integer(read, "AEGIS_REQUEST_TIMEOUT_MS", 30_000, 100, 3_600_000),
    shutdownGraceMs: integer(read, "AEGIS_SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
    bootstrapCredentialFile: read("AEGIS_BOOTSTRAP_CREDENTIAL_FILE"),
  });
}

function integer(
  read: (name: string) => string | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const raw = read(name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function url(read: (name: string) => string | undefined, name: string, fallback: string): string {
  const raw = read(name) ?? fallback;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, `must be an absolute URL, got "${raw}"`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new ConfigError(name, "must be an http:// or https:// URL");
  }
  if (parsed.search || parsed.hash) throw new ConfigError(name, "must not have a query or fragment");
  return parsed.href.replace(/\/$/, "");
}
