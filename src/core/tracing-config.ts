// The OpenTelemetry settings, read from the standard OTEL_* variables
// (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/)
// with the rest of the configuration (config.ts), checked once, frozen.
// Tracing is off unless an OTLP endpoint or `OTEL_TRACES_EXPORTER=otlp` is
// given; `OTEL_SDK_DISABLED=true` and `OTEL_TRACES_EXPORTER=none` keep it
// off. The SDK packages this broker uses (sdk-trace 3) read no variables
// themselves, so what is not parsed here is not honoured, except the OTLP
// exporter's transport settings it reads on its own (client certificates,
// compression), which are named in the README.
import { ConfigError } from "./config-error.js";

export type SamplerName =
  | "always_on"
  | "always_off"
  | "traceidratio"
  | "parentbased_always_on"
  | "parentbased_always_off"
  | "parentbased_traceidratio";

const samplers: readonly SamplerName[] = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio",
];

export interface TracingConfig {
  /** Where spans are POSTed (OTLP/HTTP, JSON): the traces endpoint, or the base endpoint plus `/v1/traces`. */
  readonly endpoint: string;
  /** Headers sent with every export (`OTEL_EXPORTER_OTLP_HEADERS`, then the traces-specific ones). */
  readonly headers: Readonly<Record<string, string>>;
  readonly exportTimeoutMs: number;
  /** `service.name` of the resource (`OTEL_SERVICE_NAME`, else `service.name` in the attributes, else aegis-broker). */
  readonly serviceName: string;
  /** `OTEL_RESOURCE_ATTRIBUTES`, decoded. */
  readonly resourceAttributes: Readonly<Record<string, string>>;
  readonly sampler: SamplerName;
  /** The ratio of the traceidratio samplers (`OTEL_TRACES_SAMPLER_ARG`, default 1). */
  readonly samplerRatio: number;
  /** The batch span processor (`OTEL_BSP_*`). */
  readonly batch: {
    readonly scheduleDelayMs: number;
    readonly exportTimeoutMs: number;
    readonly maxQueueSize: number;
    readonly maxExportBatchSize: number;
  };
}

type Read = (name: string) => string | undefined;

/** The tracing settings, or undefined when tracing is off. */
export function tracingConfig(read: Read): TracingConfig | undefined {
  const disabled = read("OTEL_SDK_DISABLED");
  if (disabled !== undefined && !["true", "false"].includes(disabled.toLowerCase())) {
    throw new ConfigError("OTEL_SDK_DISABLED", `must be true or false, got "${disabled}"`);
  }
  const exporter = read("OTEL_TRACES_EXPORTER")?.toLowerCase();
  if (exporter !== undefined && exporter !== "otlp" && exporter !== "none") {
    throw new ConfigError("OTEL_TRACES_EXPORTER", `only otlp and none are supported, got "${exporter}"`);
  }
  const tracesEndpoint = read("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const baseEndpoint = read("OTEL_EXPORTER_OTLP_ENDPOINT");
  if (disabled?.toLowerCase() === "true" || exporter === "none") return undefined;
  if (exporter === undefined && tracesEndpoint === undefined && baseEndpoint === undefined) return undefined;

  for (const name of ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"]) {
    const protocol = read(name);
    if (protocol !== undefined && protocol !== "http/json") {
      throw new ConfigError(name, `only http/json is supported (OTLP over HTTP with JSON), got "${protocol}"`);
    }
  }
  const endpoint = tracesEndpoint
    ? exportUrl("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", tracesEndpoint)
    : `${exportUrl("OTEL_EXPORTER_OTLP_ENDPOINT", baseEndpoint ?? "http://localhost:4318").replace(/\/$/, "")}/v1/traces`;
  const resourceAttributes = keyValues(read, "OTEL_RESOURCE_ATTRIBUTES");
  const sampler = (read("OTEL_TRACES_SAMPLER")?.toLowerCase() ?? "parentbased_always_on") as SamplerName;
  if (!samplers.includes(sampler)) {
    throw new ConfigError("OTEL_TRACES_SAMPLER", `must be one of ${samplers.join(", ")}, got "${sampler}"`);
  }
  const exportTimeoutMs = whole(
    read,
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    whole(read, "OTEL_EXPORTER_OTLP_TIMEOUT", 10_000),
  );
  const maxQueueSize = whole(read, "OTEL_BSP_MAX_QUEUE_SIZE", 2048);
  const maxExportBatchSize = whole(read, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", Math.min(512, maxQueueSize));
  if (maxExportBatchSize > maxQueueSize) {
    throw new ConfigError(
      "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
      `must not exceed OTEL_BSP_MAX_QUEUE_SIZE (${maxQueueSize})`,
    );
  }
  return Object.freeze({
    endpoint,
    headers: Object.freeze({
      ...keyValues(read, "OTEL_EXPORTER_OTLP_HEADERS"),
      ...keyValues(read, "OTEL_EXPORTER_OTLP_TRACES_HEADERS"),
    }),
    exportTimeoutMs,
    serviceName: read("OTEL_SERVICE_NAME") ?? resourceAttributes["service.name"] ?? "aegis-broker",
    resourceAttributes: Object.freeze(resourceAttributes),
    sampler,
    samplerRatio: sampler.endsWith("traceidratio") ? ratio(read, "OTEL_TRACES_SAMPLER_ARG") : 1,
    batch: Object.freeze({
      scheduleDelayMs: whole(read, "OTEL_BSP_SCHEDULE_DELAY", 5_000),
      exportTimeoutMs: whole(read, "OTEL_BSP_EXPORT_TIMEOUT", 30_000),
      maxQueueSize,
      maxExportBatchSize,
    }),
  });
}

function exportUrl(name: string, raw: string): string {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, `must be an absolute URL, got "${raw}"`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new ConfigError(name, "must be an http:// or https:// URL");
  }
  return parsed.href;
}

/** `key1=value1,key2=value2` with percent-encoded values (W3C Baggage octets), as the SDK reads it. */
function keyValues(read: Read, name: string): Record<string, string> {
  const raw = read(name);
  const result: Record<string, string> = {};
  if (raw === undefined) return result;
  for (const item of raw.split(",")) {
    if (item.trim() === "") continue;
    const at = item.indexOf("=");
    const key = item.slice(0, at).trim();
    let value: string;
    try {
      value = decodeURIComponent(item.slice(at + 1).trim());
    } catch {
      value = "";
    }
    // Never echo the value: OTLP headers carry the collector's API key.
    if (at <= 0 || key === "" || value === "")
      throw new ConfigError(name, `"${key || item.slice(0, 20)}…" is not key=value`);
    result[key] = value;
  }
  return result;
}

function whole(read: Read, name: string, fallback: number): number {
  const raw = read(name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) === 0)
    throw new ConfigError(name, `must be a positive whole number, got "${raw}"`);
  return Number(raw);
}

function ratio(read: Read, name: string): number {
  const raw = read(name);
  if (raw === undefined) return 1;
  const value = Number(raw);
  if (raw === "" || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new ConfigError(name, `must be a number between 0 and 1, got "${raw}"`);
  }
  return value;
}
