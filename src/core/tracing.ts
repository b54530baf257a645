// OpenTelemetry tracing, one instance per broker (like the metrics registry:
// never the API's global provider, so several brokers in one process, as in
// the tests, keep their spans apart), built on the official SDK
// (@opentelemetry/sdk-trace) and exported over OTLP/HTTP in batches.
//
// It exists only when tracing is configured (tracing-config.ts): with it off
// nothing is created and the callers' `tracing?.` costs one property read,
// so the hot path is what it was.
//
// The active span of a call is kept in an AsyncLocalStorage of this
// instance (what the SDK's context managers do, without registering one
// globally). Callers see only what they need: a server span per call
// (`startServer`, continuing the caller's W3C `traceparent`/`tracestate`),
// child spans around work that matters (`child`), the ids for the log line,
// and the wait of a group-committed request (`groupCommit`, for db/, which
// cannot import core and takes it through its own interface).
//
// Span attributes never carry a secret: callers give ids, names of actions
// and codes, never a credential, a request body or a header value.
import { AsyncLocalStorage } from "node:async_hooks";
import {
  type Attributes,
  type Context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { type ExportResult, ExportResultCode, W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  type ReadableSpan,
  type Sampler,
  type SpanExporter,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import { ATTR_DB_OPERATION_BATCH_SIZE, ATTR_ERROR_TYPE, ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import type { Logger } from "pino";
import type { BatchTracer } from "../db/group-commit.js";
import type { TracingConfig } from "./tracing-config.js";

/** Request headers as either API has them: web `Headers` (Connect) or Node's header object (HTTP routes). */
export type IncomingHeaders = Headers | Readonly<Record<string, string | string[] | undefined>>;

/**
 * Whether `carrier` is a Fetch `Headers` (Node's, or the transport's own
 * RecordHeaders), not a Node header object, whose values are never functions.
 */
function isFetchHeaders(carrier: IncomingHeaders): carrier is Headers {
  return typeof carrier.get === "function";
}

const headerGetter: TextMapGetter<IncomingHeaders> = {
  get(carrier, key) {
    if (isFetchHeaders(carrier)) return carrier.get(key) ?? undefined;
    return carrier[key];
  },
  keys(carrier) {
    if (!isFetchHeaders(carrier)) return Object.keys(carrier);
    const keys: string[] = [];
    carrier.forEach((_, key) => {
      keys.push(key);
    });
    return keys;
  },
};

interface Active {
  readonly context: Context;
  /** The call's server span, which `describeCall` annotates whichever child is current. */
  readonly server: Span;
}

export class Tracing {
  readonly #provider: TracerProvider;
  readonly #tracer: Tracer;
  readonly #active = new AsyncLocalStorage<Active>();
  readonly #propagator = new W3CTraceContextPropagator();

  constructor(config: TracingConfig, log: Logger, exporter?: SpanExporter) {
    const resource = defaultResource().merge(
      resourceFromAttributes({ ...config.resourceAttributes, [ATTR_SERVICE_NAME]: config.serviceName }),
    );
    const otlp =
      exporter ??
      new OTLPTraceExporter({
        url: config.endpoint,
        headers: { ...config.headers },
        timeoutMillis: config.exportTimeoutMs,
      });
    this.#provider = new TracerProvider({
      resource,
      sampler: samplerOf(config),
      spanProcessors: [
        new BatchSpanProcessor({
          exporter: loggingFailures(otlp, log),
          scheduledDelayMillis: config.batch.scheduleDelayMs,
          exportTimeoutMillis: config.batch.exportTimeoutMs,
          maxQueueSize: config.batch.maxQueueSize,
          maxExportBatchSize: config.batch.maxExportBatchSize,
        }),
      ],
    });
    this.#tracer = this.#provider.getTracer("aegis-broker");
  }

  /** A server span for a request, child of the caller's span when its `traceparent` is valid. */
  startServer(name: string, headers: IncomingHeaders, attributes: Attributes): Span {
    const parent = this.#propagator.extract(ROOT_CONTEXT, headers, headerGetter);
    return this.#tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
  }

  /** Runs `work` with `span` as the call's server span (the parent of the child spans made inside). */
  within<T>(span: Span, work: () => T): T {
    return this.#active.run({ context: trace.setSpan(ROOT_CONTEXT, span), server: span }, work);
  }

  /**
   * Runs `work` (sync or async) in a child span of the current one; outside
   * a traced call (a periodic job, start-up) it runs untraced. A thrown
   * error marks the span failed and is rethrown.
   */
  child<T>(name: string, attributes: Attributes, work: () => T): T {
    const active = this.#active.getStore();
    if (!active) return work();
    const span = this.#tracer.startSpan(name, { kind: SpanKind.INTERNAL, attributes }, active.context);
    const failed = (error: unknown) => {
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorName(error) });
      span.end();
      throw error;
    };
    let result: T;
    try {
      result = this.#active.run({ context: trace.setSpan(active.context, span), server: active.server }, work);
    } catch (error) {
      return failed(error);
    }
    if (result instanceof Promise) {
      return result.then((value) => {
        span.end();
        return value;
      }, failed) as T;
    }
    span.end();
    return result;
  }

  /** Adds attributes to the current call's server span (who called, what on). */
  describeCall(attributes: Attributes): void {
    this.#active.getStore()?.server.setAttributes(attributes);
  }

  /** The ids of the current span, for the call's log line. */
  logIds(): { trace_id: string; span_id: string } | undefined {
    const active = this.#active.getStore();
    const span = active && trace.getSpan(active.context);
    return span ? idsOf(span) : undefined;
  }

  /** Each request of a group-commit queue as a child span of its call: its wait, then its batch's write. */
  groupCommit(queue: string, attributes: Attributes = {}): BatchTracer {
    return {
      joined: () => {
        const active = this.#active.getStore();
        if (!active) return undefined;
        const span = this.#tracer.startSpan(
          `${queue} group commit`,
          { kind: SpanKind.INTERNAL, attributes: { "aegis.queue": queue, ...attributes } },
          active.context,
        );
        return {
          writing: (size) => {
            span.addEvent("batch write", { [ATTR_DB_OPERATION_BATCH_SIZE]: size });
            span.setAttribute(ATTR_DB_OPERATION_BATCH_SIZE, size);
          },
          done: (error) => {
            if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: errorName(error) });
            span.end();
          },
        };
      },
    };
  }

  /** Exports what is still queued and stops (broker shutdown). */
  async shutdown(): Promise<void> {
    await this.#provider.shutdown();
  }
}

export function idsOf(span: Span): { trace_id: string; span_id: string } {
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}

/** Marks a span failed with `code` (a Connect code name, an HTTP status) and ends it. */
export function endSpan(span: Span, failure: { code: string; message?: string } | undefined): void {
  if (failure) {
    span.setAttribute(ATTR_ERROR_TYPE, failure.code);
    span.setStatus({ code: SpanStatusCode.ERROR, message: failure.message ?? failure.code });
  }
  span.end();
}

function samplerOf(config: TracingConfig): Sampler {
  const root = (name: string): Sampler => {
    if (name.endsWith("always_off")) return new AlwaysOffSampler();
    if (name.endsWith("traceidratio")) return new TraceIdRatioBasedSampler(config.samplerRatio);
    return new AlwaysOnSampler();
  };
  return config.sampler.startsWith("parentbased_")
    ? new ParentBasedSampler({ root: root(config.sampler) })
    : root(config.sampler);
}

/** An error's class name only: messages may quote input. */
function errorName(error: unknown): string {
  return error instanceof Error ? error.name : "error";
}

/** The exporter, telling the broker's log when an export fails (the SDK would only tell its own silent logger). */
function loggingFailures(exporter: SpanExporter, log: Logger): SpanExporter {
  return {
    export(spans: ReadableSpan[], done: (result: ExportResult) => void) {
      exporter.export(spans, (result) => {
        if (result.code !== ExportResultCode.SUCCESS) {
          log.warn({ err: result.error, spans: spans.length }, "trace export failed");
        }
        done(result);
      });
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
  };
}
