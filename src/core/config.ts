// Broker configuration: read from the environment once at start-up, checked
// in full, and frozen. Nothing else in the broker reads `process.env`.
//
// A bad value stops start-up with a ConfigError naming the variable and what
// is wrong with it, so an operator never finds out at the first request.
import { isIP } from "node:net";
import { availableParallelism } from "node:os";
import path from "node:path";
import { ConfigError } from "./config-error.js";
import { type TracingConfig, tracingConfig } from "./tracing-config.js";

export interface Config {
  /** Interface to listen on. */
  readonly host: string;
  /** Broker processes serving the port (1: the broker runs in this process alone). */
  readonly workers: number;
  /** TCP port; 0 picks a free one (tests). */
  readonly port: number;
  /** URL clients use to reach the broker; DPoP `htu`, token `iss` and OAuth metadata derive from it. */
  readonly publicUrl: string;
  /** False when publicUrl was derived from host and port (the broker then uses the port it bound). */
  readonly publicUrlGiven: boolean;
  /** Directory for the embedded database and a generated root key. */
  readonly dataDir: string;
  /** PostgreSQL URL; undefined selects the embedded PGlite database in `dataDir`. */
  readonly databaseUrl: string | undefined;
  /**
   * Whether the security rate limits are kept in the database, shared by
   * every instance on it: on PostgreSQL, not on the embedded database (whose
   * workers reach it over a socket but keep their limits in process).
   */
  readonly sharedRateLimits: boolean;
  /** Root key material as given (base64url of 32 bytes), or undefined. */
  readonly rootKey: string | undefined;
  /** File holding the root key, or undefined. */
  readonly rootKeyFile: string | undefined;
  /**
   * What wraps the KMS's key material (core/root-of-trust.ts): the local root
   * key (default), or an AES key that never leaves a PKCS#11 token.
   */
  readonly rootOfTrust: RootOfTrustConfig;
  /** TLS certificate and key files; both or neither. */
  readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined;
  readonly logLevel: LogLevel;
  /** Largest request or response message, in bytes. */
  readonly maxMessageBytes: number;
  /** Deadline applied to unary calls that carry none; also the largest a client may ask for. */
  readonly requestTimeoutMs: number;
  /** How long shutdown waits for in-flight calls before closing connections. */
  readonly shutdownGraceMs: number;
  /** How long an HTTP/1.1 client may take to send a request's headers (slow clients hold connections). */
  readonly headersTimeoutMs: number;
  /**
   * How long an idle HTTP/1.1 keep-alive connection stays open between
   * requests. Behind a load balancer that reuses connections, longer than
   * its idle timeout, so that the broker never closes one it is about to use.
   */
  readonly keepAliveTimeoutMs: number;
  /** Where to write the one-time bootstrap credential; undefined prints it to stderr (never the log). */
  readonly bootstrapCredentialFile: string | undefined;
  /** Broker token lifetime when the client asks for none, and the most it may ask for (seconds). */
  readonly tokenLifetime: { readonly defaultSeconds: number; readonly maxSeconds: number };
  /** Whether DPoP proofs must carry a server nonce (RFC 9449 §8). */
  readonly dpopNonceRequired: boolean;
  /** How long a rotated API key keeps working by default (seconds). */
  readonly apiKeyRotationGraceSeconds: number;
  /** How often each instance reads the revocation feed (ms). */
  readonly revocationPollMs: number;
  /** The shortest waiting period a KMS key's scheduled destruction may have (days, 7 to 30). */
  readonly kmsMinDestructionDays: number;
  /** How often each instance destroys KMS keys whose destruction is due and rotates keys on their period (ms). */
  readonly kmsJobIntervalMs: number;
  /** Per-minute limits: token mints per principal and per client address; failed authentications per address. */
  readonly rateLimits: {
    readonly mintsPerMinute: number;
    /** RevokeToken calls per caller: each can publish a revocation entry that every instance keeps until it expires. */
    readonly revocationsPerMinute: number;
    readonly authFailuresPerMinute: number;
    /**
     * Wrong user codes entered on the verification page: per address, per
     * signed-in person (so one person cannot use up the global limit and block
     * every approval), and over all addresses.
     */
    readonly userCodeFailuresPerMinute: number;
    readonly userCodeFailuresPerMinutePerPerson: number;
    readonly userCodeFailuresPerMinuteGlobal: number;
  };
  /**
   * Where to serve `/metrics` on a listener of its own, without
   * authentication; undefined serves it on the main listener to callers
   * holding the elevated grant (README "Metrics").
   */
  readonly metricsAddress: { readonly host: string; readonly port: number } | undefined;
  /**
   * Peers (CIDRs) whose `Forwarded` / `X-Forwarded-For` / `X-Forwarded-Proto`
   * headers are believed; empty: those headers are ignored.
   */
  readonly trustedProxies: readonly string[];
  /**
   * Web origins (`https://app.example.com`) whose pages may call the RPC
   * API and the OAuth endpoints from a browser (CORS); empty: none. Exact
   * origins only, never `*`: a request from any other origin is refused
   * before anything runs (transport/cors.ts).
   */
  readonly corsAllowedOrigins: readonly string[];
  /** How long a person's enrollment code works (seconds). */
  readonly enrollmentSeconds: number;
  /** Per-account slowing of wrong passwords on the sign-in pages (auth/sign-in-backoff.ts). */
  readonly signIn: { readonly freeFailures: number; readonly maxBackoffSeconds: number };
  /** Device flow (RFC 8628): code lifetime and minimum polling interval (seconds); refresh token lifetime. */
  readonly deviceFlow: {
    readonly codeSeconds: number;
    readonly intervalSeconds: number;
    readonly refreshTokenSeconds: number;
  };
  /** OpenTelemetry tracing from the standard OTEL_* variables (tracing-config.ts); undefined: off. */
  readonly tracing: TracingConfig | undefined;
}

export type RootOfTrustConfig = { readonly kind: "local" } | Pkcs11Config;

export interface Pkcs11Config {
  readonly kind: "pkcs11";
  /** Path of the PKCS#11 module (a shared library, e.g. /usr/lib/softhsm/libsofthsm2.so). */
  readonly module: string;
  /** The token, by label or by slot id; exactly one is set. */
  readonly tokenLabel: string | undefined;
  readonly slot: number | undefined;
  /** The user PIN as given, or a file holding it; exactly one is set. */
  readonly pin: string | undefined;
  readonly pinFile: string | undefined;
  /** Label of the AES-256 key on the token. */
  readonly keyLabel: string;
  /** Create the key at start when the token has none by that label (never without being asked). */
  readonly createKey: boolean;
  /** Sessions kept open for concurrent wraps (one operation per session at a time). */
  readonly sessions: number;
}

export const rootOfTrustKinds = ["local", "pkcs11"] as const;

export const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof logLevels)[number];

export { ConfigError };

type Env = Readonly<Record<string, string | undefined>>;

/**
 * What the configuration is loaded for. `serve`: an instance that answers
 * clients, held to the checks of what must agree across instances.
 * `worker`: one of the processes of `AEGIS_WORKERS`, whose environment its
 * primary made from one the primary checked (on the embedded database its
 * AEGIS_DATABASE_URL is the primary's socket, and the workers share one
 * port, so the derived public URL is true). `migrate`: answers no one.
 */
export type ConfigUse = "serve" | "worker" | "migrate";

/** What the primary of AEGIS_WORKERS tells its workers on the embedded database; read for workers only. */
export const embeddedWorkerVariable = "AEGIS_WORKER_OF_EMBEDDED_DATABASE";

/** Reads and checks the whole configuration; throws ConfigError on the first bad value. */
export function loadConfig(env: Env = process.env, use: ConfigUse = "serve"): Config {
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

  const metricsAddress = listenAddress(read, "AEGIS_METRICS_ADDRESS");
  if (metricsAddress && port !== 0 && metricsAddress.port === port) {
    throw new ConfigError("AEGIS_METRICS_ADDRESS", `must use another port than AEGIS_PORT (${port})`);
  }

  if (use === "serve" && databaseUrl !== undefined && read("AEGIS_PUBLIC_URL") === undefined) {
    // Tokens carry the public URL as their issuer and DPoP proofs name it:
    // instances that derive it from their own address reject each other's.
    throw new ConfigError(
      "AEGIS_PUBLIC_URL",
      "required with AEGIS_DATABASE_URL: every broker on a shared database must be given the one URL clients use " +
        "(the load balancer's), e.g. https://aegis.example.com",
    );
  }

  return Object.freeze({
    host,
    workers: workers(read),
    port,
    publicUrl,
    publicUrlGiven: read("AEGIS_PUBLIC_URL") !== undefined,
    dataDir: path.resolve(read("AEGIS_DATA_DIR") ?? "data"),
    databaseUrl,
    // Set by the primary of AEGIS_WORKERS for its workers on the embedded database (app/workers.ts).
    sharedRateLimits: databaseUrl !== undefined && !(use === "worker" && read(embeddedWorkerVariable) === "1"),
    rootKey,
    rootKeyFile,
    rootOfTrust: Object.freeze(rootOfTrust(read)),
    tls: tls && Object.freeze(tls),
    logLevel: logLevel as LogLevel,
    maxMessageBytes: integer(read, "AEGIS_MAX_MESSAGE_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024),
    requestTimeoutMs: integer(read, "AEGIS_REQUEST_TIMEOUT_MS", 30_000, 100, 3_600_000),
    shutdownGraceMs: integer(read, "AEGIS_SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
    headersTimeoutMs: integer(read, "AEGIS_HTTP_HEADERS_TIMEOUT_MS", 20_000, 1_000, 300_000),
    keepAliveTimeoutMs: integer(read, "AEGIS_HTTP_KEEP_ALIVE_TIMEOUT_MS", 5_000, 1_000, 600_000),
    bootstrapCredentialFile: read("AEGIS_BOOTSTRAP_CREDENTIAL_FILE"),
    tokenLifetime: Object.freeze(tokenLifetime(read)),
    dpopNonceRequired: boolean(read, "AEGIS_DPOP_NONCE", false),
    apiKeyRotationGraceSeconds: integer(read, "AEGIS_API_KEY_ROTATION_GRACE_S", 86_400, 0, 30 * 86_400),
    revocationPollMs: integer(read, "AEGIS_REVOCATION_POLL_MS", 250, 20, 5_000),
    kmsMinDestructionDays: integer(read, "AEGIS_KMS_MIN_DESTRUCTION_DAYS", 7, 7, 30),
    kmsJobIntervalMs: integer(read, "AEGIS_KMS_JOB_INTERVAL_MS", 60_000, 20, 86_400_000),
    rateLimits: Object.freeze({
      mintsPerMinute: integer(read, "AEGIS_RATE_LIMIT_MINTS_PER_MINUTE", 1_200, 1, 10_000_000),
      revocationsPerMinute: integer(read, "AEGIS_RATE_LIMIT_REVOCATIONS_PER_MINUTE", 120, 1, 10_000_000),
      authFailuresPerMinute: integer(read, "AEGIS_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE", 30, 1, 10_000_000),
      ...userCodeLimits(read),
    }),
    metricsAddress,
    trustedProxies: Object.freeze(cidrs(read, "AEGIS_TRUSTED_PROXIES")),
    corsAllowedOrigins: Object.freeze(origins(read, "AEGIS_CORS_ALLOWED_ORIGINS")),
    enrollmentSeconds: integer(read, "AEGIS_ENROLLMENT_TTL_S", 72 * 3_600, 300, 30 * 86_400),
    signIn: Object.freeze({
      freeFailures: integer(read, "AEGIS_SIGN_IN_FREE_FAILURES", 5, 1, 1_000),
      maxBackoffSeconds: integer(read, "AEGIS_SIGN_IN_MAX_BACKOFF_S", 900, 1, 86_400),
    }),
    deviceFlow: Object.freeze({
      codeSeconds: integer(read, "AEGIS_DEVICE_CODE_TTL_S", 600, 1, 3_600),
      intervalSeconds: integer(read, "AEGIS_DEVICE_POLL_INTERVAL_S", 5, 1, 60),
      refreshTokenSeconds: integer(read, "AEGIS_REFRESH_TOKEN_TTL_S", 30 * 86_400, 60, 400 * 86_400),
    }),
    tracing: tracingConfig(read),
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

function tokenLifetime(read: (name: string) => string | undefined) {
  const maxSeconds = integer(read, "AEGIS_TOKEN_MAX_LIFETIME_S", 900, 30, 3_600);
  const defaultSeconds = integer(read, "AEGIS_TOKEN_DEFAULT_LIFETIME_S", Math.min(300, maxSeconds), 30, 3_600);
  if (defaultSeconds > maxSeconds) {
    throw new ConfigError(
      "AEGIS_TOKEN_DEFAULT_LIFETIME_S",
      `must not exceed AEGIS_TOKEN_MAX_LIFETIME_S (${maxSeconds})`,
    );
  }
  return { defaultSeconds, maxSeconds };
}

function userCodeLimits(read: (name: string) => string | undefined) {
  const global = integer(read, "AEGIS_RATE_LIMIT_USER_CODE_FAILURES_PER_MINUTE_GLOBAL", 200, 1, 1_000_000);
  const perPerson = integer(
    read,
    "AEGIS_RATE_LIMIT_USER_CODE_FAILURES_PER_MINUTE_PER_PERSON",
    Math.max(1, Math.min(10, global - 1)),
    1,
    10_000,
  );
  if (perPerson >= global && global > 1) {
    throw new ConfigError(
      "AEGIS_RATE_LIMIT_USER_CODE_FAILURES_PER_MINUTE_PER_PERSON",
      `must be below AEGIS_RATE_LIMIT_USER_CODE_FAILURES_PER_MINUTE_GLOBAL (${global})`,
    );
  }
  return {
    userCodeFailuresPerMinute: integer(read, "AEGIS_RATE_LIMIT_USER_CODE_FAILURES_PER_MINUTE", 10, 1, 10_000),
    userCodeFailuresPerMinutePerPerson: perPerson,
    userCodeFailuresPerMinuteGlobal: global,
  };
}

/** AEGIS_ROOT_OF_TRUST and, for pkcs11, the AEGIS_PKCS11_* variables, checked together. */
function rootOfTrust(read: (name: string) => string | undefined): RootOfTrustConfig {
  const kind = read("AEGIS_ROOT_OF_TRUST") ?? "local";
  if (!(rootOfTrustKinds as readonly string[]).includes(kind)) {
    throw new ConfigError("AEGIS_ROOT_OF_TRUST", `must be one of ${rootOfTrustKinds.join(", ")}, got "${kind}"`);
  }
  const pkcs11Variables = [
    "AEGIS_PKCS11_MODULE",
    "AEGIS_PKCS11_TOKEN_LABEL",
    "AEGIS_PKCS11_SLOT",
    "AEGIS_PKCS11_PIN",
    "AEGIS_PKCS11_PIN_FILE",
    "AEGIS_PKCS11_KEY_LABEL",
    "AEGIS_PKCS11_CREATE_KEY",
    "AEGIS_PKCS11_SESSIONS",
  ];
  if (kind === "local") {
    // A PKCS#11 setting without AEGIS_ROOT_OF_TRUST=pkcs11 is a mistake that
    // would otherwise leave the key material under the local root key unnoticed.
    const stray = pkcs11Variables.find((name) => read(name) !== undefined);
    if (stray) throw new ConfigError(stray, "is set but AEGIS_ROOT_OF_TRUST is not pkcs11");
    return { kind: "local" };
  }
  const required = (name: string): string => {
    const value = read(name);
    if (value === undefined) throw new ConfigError(name, "required with AEGIS_ROOT_OF_TRUST=pkcs11");
    return value;
  };
  const module = required("AEGIS_PKCS11_MODULE");
  if (!path.isAbsolute(module)) {
    throw new ConfigError("AEGIS_PKCS11_MODULE", `must be the absolute path of the module's .so, got "${module}"`);
  }
  const tokenLabel = read("AEGIS_PKCS11_TOKEN_LABEL");
  const slotText = read("AEGIS_PKCS11_SLOT");
  if ((tokenLabel === undefined) === (slotText === undefined)) {
    throw new ConfigError(
      "AEGIS_PKCS11_TOKEN_LABEL",
      "set AEGIS_PKCS11_TOKEN_LABEL or AEGIS_PKCS11_SLOT (exactly one)",
    );
  }
  if (tokenLabel !== undefined && Buffer.byteLength(tokenLabel) > 32) {
    throw new ConfigError("AEGIS_PKCS11_TOKEN_LABEL", "a token label is at most 32 bytes");
  }
  const slot = slotText === undefined ? undefined : integer(read, "AEGIS_PKCS11_SLOT", 0, 0, 2 ** 32 - 1);
  const pin = read("AEGIS_PKCS11_PIN");
  const pinFile = read("AEGIS_PKCS11_PIN_FILE");
  if ((pin === undefined) === (pinFile === undefined)) {
    throw new ConfigError("AEGIS_PKCS11_PIN", "set AEGIS_PKCS11_PIN or AEGIS_PKCS11_PIN_FILE (exactly one)");
  }
  return {
    kind: "pkcs11",
    module,
    tokenLabel,
    slot,
    pin,
    pinFile,
    keyLabel: required("AEGIS_PKCS11_KEY_LABEL"),
    createKey: boolean(read, "AEGIS_PKCS11_CREATE_KEY", false),
    sessions: integer(read, "AEGIS_PKCS11_SESSIONS", 4, 1, 64),
  };
}

/** `auto`: one per core the process may use (see the README on what runs where). */
function workers(read: (name: string) => string | undefined): number {
  const raw = read("AEGIS_WORKERS");
  if (raw === "auto") return Math.min(availableParallelism(), maxWorkers);
  if (raw !== undefined && !/^\d+$/.test(raw)) {
    throw new ConfigError("AEGIS_WORKERS", `must be a whole number or auto, got "${raw}"`);
  }
  return integer(read, "AEGIS_WORKERS", 1, 1, maxWorkers);
}

const maxWorkers = 64;

/** `host:port`, `[v6]:port` or `:port` (all interfaces). */
function listenAddress(read: (name: string) => string | undefined, name: string) {
  const raw = read(name);
  if (raw === undefined) return undefined;
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(raw);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (!match || host === undefined || port > 65535 || (match[1] !== undefined && isIP(host) !== 6)) {
    throw new ConfigError(name, `must be host:port, [ipv6]:port or :port, got "${raw}"`);
  }
  return Object.freeze({ host: host === "" ? "0.0.0.0" : host, port });
}

/** Comma-separated CIDRs (`10.0.0.0/8`, `::1/128`); a bare address is one host. */
function cidrs(read: (name: string) => string | undefined, name: string): string[] {
  const raw = read(name);
  if (raw === undefined) return [];
  return raw.split(",").map((item) => {
    const text = item.trim();
    const [address = "", prefix, extra] = text.split("/");
    const family = isIP(address);
    const bits = family === 4 ? 32 : 128;
    if (family === 0 || extra !== undefined || (prefix !== undefined && !/^\d{1,3}$/.test(prefix))) {
      throw new ConfigError(name, `"${text}" is not an address or CIDR (e.g. 10.0.0.0/8, ::1/128)`);
    }
    if (prefix !== undefined && Number(prefix) > bits) {
      throw new ConfigError(name, `"${text}": an IPv${family} prefix is at most /${bits}`);
    }
    return `${address}/${prefix ?? bits}`;
  });
}

/**
 * Comma-separated web origins, each exactly as a browser sends it in
 * `Origin` (RFC 6454 §6.2: scheme, host, port only when not the default, no
 * path or trailing slash, lower case), so comparing is string equality. `*`
 * and `null` are refused: the first would let every site call the API with
 * a user's credentials, the second is what sandboxed and opaque documents
 * send.
 */
function origins(read: (name: string) => string | undefined, name: string): string[] {
  const raw = read(name);
  if (raw === undefined) return [];
  return raw.split(",").map((item) => {
    const text = item.trim();
    if (text === "*") throw new ConfigError(name, "must list exact origins: * is not allowed");
    let parsed: URL | undefined;
    try {
      parsed = new URL(text);
    } catch {
      parsed = undefined;
    }
    if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
      throw new ConfigError(name, `"${text}" is not an http(s) origin (e.g. https://app.example.com)`);
    }
    if (parsed.origin !== text) {
      throw new ConfigError(name, `"${text}" is not an origin as browsers send it: write ${parsed.origin}`);
    }
    return text;
  });
}

function boolean(read: (name: string) => string | undefined, name: string, fallback: boolean): boolean {
  const raw = read(name);
  if (raw === undefined) return fallback;
  if (raw === "true" || raw === "1") return true;
  if (raw === "false" || raw === "0") return false;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
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
