// The broker's Prometheus metrics: one registry per broker instance (never
// prom-client's global one, so several brokers in one process, as in the
// tests, keep their counts apart), and every instrument the broker records
// into, named and documented here in one place (README "Metrics" lists them).
//
// Labels only ever take values from small, fixed sets: an RPC's service and
// method (the served ones), a route's declared path, a status or code, a
// limit's name. Nothing a client chooses freely (a path that matched no
// route, a token, an id, an address) becomes a label value: each distinct
// value is a new series kept for the life of the process.

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { BatchObserver } from "../db/group-commit.js";

/** Latency buckets (seconds): a no-op call takes ~0.1 ms, a write on PostgreSQL a few ms. */
const latencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const httpMethods = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]);

/** What the metrics read of a database connection pool when asked (PostgreSQL; the embedded database has none). */
export interface PoolStats {
  readonly total: number;
  readonly idle: number;
  readonly waiting: number;
}

export class BrokerMetrics {
  readonly registry = new Registry();

  readonly #rpcHandled = new Counter({
    name: "aegis_rpc_handled_total",
    help: "RPCs completed, by service, method and Connect code (streams when they end)",
    labelNames: ["service", "method", "code"] as const,
    registers: [this.registry],
  });
  readonly #rpcSeconds = new Histogram({
    name: "aegis_rpc_duration_seconds",
    help: "Time from the call reaching the interceptors to its answer (streams: to their end)",
    labelNames: ["service", "method", "code"] as const,
    buckets: latencyBuckets,
    registers: [this.registry],
  });
  readonly #rpcInFlight = new Gauge({
    name: "aegis_rpc_in_flight",
    help: "RPCs started and not yet answered (open streams included)",
    labelNames: ["service", "method"] as const,
    registers: [this.registry],
  });
  readonly #httpHandled = new Counter({
    name: "aegis_http_requests_total",
    help: "HTTP requests beside the RPCs, by route (its declared path; unmatched for any other), method and status",
    labelNames: ["route", "method", "status"] as const,
    registers: [this.registry],
  });
  readonly #httpSeconds = new Histogram({
    name: "aegis_http_request_duration_seconds",
    help: "Time from an HTTP request's arrival to the end of its response",
    labelNames: ["route", "method", "status"] as const,
    buckets: latencyBuckets,
    registers: [this.registry],
  });
  readonly #httpInFlight = new Gauge({
    name: "aegis_http_in_flight",
    help: "HTTP requests (not RPCs) started and not yet answered",
    labelNames: ["route"] as const,
    registers: [this.registry],
  });
  readonly #batchSize = new Histogram({
    name: "aegis_group_commit_batch_size",
    help: "Requests written per group-commit batch (one database round each)",
    labelNames: ["queue"] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers: [this.registry],
  });
  readonly #batchWait = new Histogram({
    name: "aegis_group_commit_wait_seconds",
    help: "How long the oldest request of a batch waited before its batch was written",
    labelNames: ["queue"] as const,
    buckets: latencyBuckets,
    registers: [this.registry],
  });
  readonly #batchWrite = new Histogram({
    name: "aegis_group_commit_write_seconds",
    help: "How long writing one group-commit batch took",
    labelNames: ["queue"] as const,
    buckets: latencyBuckets,
    registers: [this.registry],
  });
  readonly #batchFailures = new Counter({
    name: "aegis_group_commit_failures_total",
    help: "Group-commit batches whose write failed (every request in them failed)",
    labelNames: ["queue"] as const,
    registers: [this.registry],
  });
  readonly #feedDelay = new Histogram({
    name: "aegis_revocation_feed_delay_seconds",
    help: "From a revocation entry's commit (database time) to this instance applying it from the feed",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly #feedPollFailures = new Counter({
    name: "aegis_revocation_feed_poll_failures_total",
    help: "Polls of the revocation feed that failed",
    registers: [this.registry],
  });
  readonly #rateLimited = new Counter({
    name: "aegis_rate_limit_refusals_total",
    help: "Events counted over a rate limit, by limit",
    labelNames: ["limit"] as const,
    registers: [this.registry],
  });
  readonly #keyOps = new Counter({
    name: "aegis_keys_op_total",
    help: "KMS key operations attempted, by operation (sign, encrypt, rotate, …)",
    labelNames: ["operation"] as const,
    registers: [this.registry],
  });
  readonly #keyOpErrors = new Counter({
    name: "aegis_keys_op_errors_total",
    help: "KMS key operations that failed or were refused, by operation and error code",
    labelNames: ["operation", "code"] as const,
    registers: [this.registry],
  });
  #feedLastPoll: number | undefined;
  #poolStats: (() => PoolStats | undefined) | undefined;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    // Gauges that prom-client names like counters, which `promtool check
    // metrics` rejects; `nodejs_active_handles` / `_requests` / `_resources`
    // (by type) carry the same counts.
    for (const name of [
      "nodejs_active_handles_total",
      "nodejs_active_requests_total",
      "nodejs_active_resources_total",
    ]) {
      this.registry.removeSingleMetric(name);
    }
    const metrics = this;
    new Gauge({
      name: "aegis_revocation_feed_lag_seconds",
      help: "Seconds since this instance's last successful revocation-feed poll began: what it may not yet know of",
      registers: [this.registry],
      collect() {
        if (metrics.#feedLastPoll !== undefined) this.set((performance.now() - metrics.#feedLastPoll) / 1000);
      },
    });
    new Gauge({
      name: "aegis_db_pool_connections",
      help: "Database connections of this instance's pool, by state (PostgreSQL only)",
      labelNames: ["state"] as const,
      registers: [this.registry],
      collect() {
        const stats = metrics.#poolStats?.();
        if (!stats) return;
        this.set({ state: "idle" }, stats.idle);
        this.set({ state: "busy" }, stats.total - stats.idle);
      },
    });
    new Gauge({
      name: "aegis_db_pool_waiting",
      help: "Queries waiting for a free connection of this instance's pool (PostgreSQL only)",
      registers: [this.registry],
      collect() {
        const stats = metrics.#poolStats?.();
        if (stats) this.set(stats.waiting);
      },
    });
  }

  #source: (() => Promise<{ contentType: string; body: string }>) | undefined;

  /** Answer scrapes from `source` instead (the metrics of every worker process, gathered by the primary). */
  exposeFrom(source: () => Promise<{ contentType: string; body: string }>): void {
    this.#source = source;
  }

  /** The exposition text and its content type. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    if (this.#source) return this.#source();
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Marks an RPC started; the returned function records its end with its code. */
  rpcStarted(service: string, method: string): (code: string) => void {
    const started = performance.now();
    this.#rpcInFlight.inc({ service, method });
    return (code) => {
      this.#rpcInFlight.dec({ service, method });
      this.#rpcHandled.inc({ service, method, code });
      this.#rpcSeconds.observe({ service, method, code }, (performance.now() - started) / 1000);
    };
  }

  /** Marks an HTTP request started on `route` (a declared path, or undefined); the returned function records its end. */
  httpStarted(route: string | undefined, method: string | undefined): (status: number) => void {
    const started = performance.now();
    const labels = {
      route: route ?? "unmatched",
      method: httpMethods.has(method ?? "") ? (method as string) : "other",
    };
    this.#httpInFlight.inc({ route: labels.route });
    return (status) => {
      this.#httpInFlight.dec({ route: labels.route });
      const done = { ...labels, status: String(status) };
      this.#httpHandled.inc(done);
      this.#httpSeconds.observe(done, (performance.now() - started) / 1000);
    };
  }

  /** An observer for one group-commit queue (db/group-commit.ts). */
  groupCommit(queue: string): BatchObserver {
    return {
      batch: (size, waitMs, writeMs, failed) => {
        this.#batchSize.observe({ queue }, size);
        this.#batchWait.observe({ queue }, waitMs / 1000);
        this.#batchWrite.observe({ queue }, writeMs / 1000);
        if (failed) this.#batchFailures.inc({ queue });
      },
    };
  }

  /** A poll of the revocation feed began at `startedAt` (performance.now()) and succeeded. */
  feedPolled(startedAt: number): void {
    this.#feedLastPoll = startedAt;
  }

  feedPollFailed(): void {
    this.#feedPollFailures.inc();
  }

  /** An entry committed at `createdAt` was applied by this instance at `now`. */
  feedEntryApplied(createdAt: Date, now: Date): void {
    this.#feedDelay.observe(Math.max(0, (now.getTime() - createdAt.getTime()) / 1000));
  }

  /** An event counted over the limit named `limit`. */
  rateLimited(limit: string): void {
    this.#rateLimited.inc({ limit });
  }

  /** A KMS operation was attempted (`operation` from the KMS's fixed list). */
  keyOp(operation: string): void {
    this.#keyOps.inc({ operation });
  }

  /** A KMS operation failed with `code` (a domain error code, or `internal`). */
  keyOpFailed(operation: string, code: string): void {
    this.#keyOpErrors.inc({ operation, code });
  }

  /** Where the pool gauges read from (called at each scrape). */
  watchPool(stats: () => PoolStats | undefined): void {
    this.#poolStats = stats;
  }
}
