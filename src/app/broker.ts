// Assembles and runs one broker: database, migrations, bootstrap, the
// interceptor chain, the RPC routes and the plain HTTP endpoints, on one
// listener. `startBroker` is what the CLI and the tests call; nothing here
// listens on import.

import cluster from "node:cluster";
import { setMaxListeners } from "node:events";
import { type ConnectRouter, createContextValues, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { AuditLog, auditChainKey } from "../audit/index.js";
import { ApiKeyCache, apiKeyAuthenticator, apiKeyHashPurpose, LastUsedRecorder } from "../auth/api-keys.js";
import { authenticatorChain } from "../auth/authenticate.js";
import type { ClientAuthenticationDeps } from "../auth/client-authentication.js";
import { dpopNonces } from "../auth/dpop-nonce.js";
import { FailedAuthentications } from "../auth/failed-authentications.js";
import { databaseReplayGuard } from "../auth/replay-guard.js";
import { SharedSignInBackoff } from "../auth/shared-sign-in-backoff.js";
import { InProcessSignInBackoff } from "../auth/sign-in-backoff.js";
import { type BootstrapResult, bootstrap } from "../bootstrap/index.js";
import { callKey } from "../core/call.js";
import { type Clock, systemClock } from "../core/clock.js";
import type { Config } from "../core/config.js";
import type { BrokerContext } from "../core/context.js";
import type { NodeHandler } from "../core/http.js";
import { keyPurposes } from "../core/key-purposes.js";
import { BrokerMetrics } from "../core/metrics.js";
import type { BrokerModule } from "../core/module.js";
import { InProcessRateLimiter } from "../core/rate-limit.js";
import { requestValidator } from "../core/request-rules.js";
import { RevocationFeed } from "../core/revocation-feed.js";
import type { RootOfTrust } from "../core/root-of-trust.js";
import { SharedRateLimits } from "../core/shared-rate-limit.js";
import { Tracing } from "../core/tracing.js";
import { openRootOfTrust } from "../crypto/open-root-of-trust.js";
import { loadRootKey } from "../crypto/root-key.js";
import { type Database, openDatabase } from "../db/database.js";
import { migrate } from "../db/migrate.js";
import { pruneExpired } from "../db/prune.js";
import { type DeviceDeps, refreshTokenHashPurpose, registerDeveloperPortalClient } from "../device/index.js";
import { HealthMonitor, healthModule } from "../health/index.js";
import { metricsModule, metricsRoute } from "../metrics/index.js";
import { actionScopes } from "../policy/admin-scopes.js";
import { grantableActions } from "../policy/method-policy.js";
import { ensureSigningKeys, KeyRing, type TokenDeps, tokenAuthenticator, VerifiedTokens } from "../tokens/index.js";
import { callOrigins, type OriginOf } from "../transport/call-origin.js";
import { withCors } from "../transport/cors.js";
import { cacheControl } from "../transport/http-caching.js";
import { type HttpRouterDeps, httpRouter } from "../transport/http-router.js";
import { createListener, type Listener } from "../transport/listener.js";
import { Deadlines, guard, observe, type PolicyDeps } from "../transport/pipeline.js";
import { validateRequests } from "../transport/request-validation.js";
import { rpcHandler } from "../transport/rpc-handler.js";
import { traceCalls } from "../transport/tracing.js";
import { clusterExposition } from "./cluster-metrics.js";
import { startJobs } from "./jobs.js";
import { domainModules, jobsOf, registerServices, routesOf, services } from "./modules.js";

export interface Broker {
  /** Base URL the broker listens on. */
  readonly url: string;
  readonly port: number;
  /** Base URL of the metrics listener when AEGIS_METRICS_ADDRESS is set. */
  readonly metricsUrl: string | undefined;
  /** Set on the first start of an empty database only. */
  readonly bootstrap: BootstrapResult | undefined;
  readonly database: Database;
  /** Graceful shutdown: refuse new calls, finish in-flight ones, flush the audit trail, close the database. */
  close(): Promise<void>;
}

export interface BrokerOptions {
  readonly log: Logger;
  readonly clock?: Clock;
  /** An already open database (tests); otherwise opened from the config. */
  readonly database?: Database;
  /** A root of trust for the KMS's key material; otherwise the local root key. */
  readonly rootOfTrust?: RootOfTrust;
}

export async function startBroker(givenConfig: Config, options: BrokerOptions): Promise<Broker> {
  // Bind first: with port 0 the public URL (token issuer, DPoP htu) is only
  // known once the port is. Requests before the broker is ready get 503.
  const listener = createListener(givenConfig.tls, givenConfig);
  const port = await listener.listen(givenConfig.port, givenConfig.host);
  const host = givenConfig.host.includes(":") ? `[${givenConfig.host}]` : givenConfig.host;
  const url = `${givenConfig.tls ? "https" : "http"}://${host}:${port}`;
  const config: Config = Object.freeze({
    ...givenConfig,
    publicUrl: givenConfig.publicUrlGiven ? givenConfig.publicUrl : url,
  });
  let assembled: AssembledBroker;
  try {
    assembled = await assembleBroker(config, options);
  } catch (error) {
    await listener.close(0);
    throw error;
  }
  const { log } = options;
  const rpcAndHttp = rpcHandler({
    log,
    routes: assembled.routes,
    interceptors: assembled.interceptors,
    readMaxBytes: config.maxMessageBytes,
    writeMaxBytes: config.maxMessageBytes,
    maxTimeoutMs: config.requestTimeoutMs,
    shutdownSignal: assembled.closing,
    contextValues: (req) => createContextValues().set(callKey, { ...assembled.originOf(req), caller: undefined }),
    fallback: assembled.http,
  });
  listener.serve(
    withCors(
      {
        allowedOrigins: config.corsAllowedOrigins,
        publicUrl: config.publicUrl,
        publicUrlGiven: config.publicUrlGiven,
        log,
      },
      rpcAndHttp,
    ),
  );
  let scrape: { listener: Listener; url: string } | undefined;
  try {
    scrape = config.metricsAddress && (await metricsListener(config, config.metricsAddress, assembled, log));
  } catch (error) {
    await listener.close(0);
    await assembled.close();
    throw error;
  }
  log.info(
    { url, publicUrl: config.publicUrl, database: assembled.database.kind, metricsUrl: scrape?.url },
    "aegis broker listening",
  );

  let closed: Promise<void> | undefined;
  return {
    url,
    port,
    metricsUrl: scrape?.url,
    bootstrap: assembled.bootstrap,
    database: assembled.database,
    close() {
      closed ??= (async () => {
        log.info("shutting down: refusing new calls, finishing in-flight ones");
        assembled.stopServing();
        // Resolves once every connection has finished its open calls; what is
        // still open after the grace period is cut.
        await listener.close(config.shutdownGraceMs);
        await scrape?.listener.close(0);
        await assembled.close();
        log.info("shut down");
      })();
      return closed;
    },
  };
}

/** `/metrics` alone, unauthenticated, on a listener of its own (see src/metrics). */
async function metricsListener(
  config: Config,
  address: { host: string; port: number },
  assembled: AssembledBroker,
  log: Logger,
): Promise<{ listener: Listener; url: string }> {
  const listener = createListener(undefined, config);
  const port = await listener.listen(address.port, address.host);
  const route = metricsRoute(assembled.metrics);
  listener.serve(httpRouter([route], { ...assembled.routerDeps, log: log.child({ listener: "metrics" }) }));
  const host = address.host.includes(":") ? `[${address.host}]` : address.host;
  return { listener, url: `http://${host}:${port}` };
}

/**
 * One broker without a listener: its RPC routes and interceptor chain (what
 * `createRouterTransport` serves in memory, or the listener over sockets),
 * its HTTP routes, and its lifecycle.
 */
export interface AssembledBroker {
  readonly routes: (router: ConnectRouter) => void;
  readonly interceptors: Interceptor[];
  /** Everything on the port that is not an RPC. */
  readonly http: NodeHandler;
  /** Request id, client address and scheme of a request (RPC or HTTP), trusted proxies considered. */
  readonly originOf: OriginOf;
  readonly metrics: BrokerMetrics;
  /** What the HTTP router needs, for a second listener's router (metrics). */
  readonly routerDeps: HttpRouterDeps;
  readonly bootstrap: BootstrapResult | undefined;
  readonly database: Database;
  /** Aborted at shutdown: unary calls take it as their signal; streams end on it. */
  readonly closing: AbortSignal;
  /** Health turns NOT_SERVING and streams end: the first step of shutdown. */
  stopServing(): void;
  /** Stops the jobs and the feed, closes the modules, flushes the audit trail, closes the database. */
  close(): Promise<void>;
}

export async function assembleBroker(config: Config, options: BrokerOptions): Promise<AssembledBroker> {
  const { log } = options;
  const clock = options.clock ?? systemClock;
  const metrics = new BrokerMetrics();
  // A worker of AEGIS_WORKERS answers scrapes with every worker's metrics.
  if (cluster.isWorker) metrics.exposeFrom(clusterExposition(metrics.registry));
  // Only when OTEL_* asks for it: off, no tracer, exporter or interceptor exists.
  const tracing = config.tracing && new Tracing(config.tracing, log);
  const rootKey = loadRootKey(config, log);
  const rootOfTrust = options.rootOfTrust ?? (await openRootOfTrust(config, rootKey, log));
  const database =
    options.database ??
    (await openDatabase(
      config.databaseUrl
        ? { kind: "postgres", url: config.databaseUrl }
        : { kind: "pglite", dataDir: config.dataDir, log },
    ));
  metrics.watchPool(() => database.poolStats?.());
  // Security limits: on PostgreSQL shared by every instance on it (README
  // "Several instances"), on the embedded database in this process.
  const sharedLimits =
    database.kind === "postgres" && config.sharedRateLimits ? new SharedRateLimits(database.sql, clock) : undefined;
  const limiter = (name: string, perMinute: number) => {
    const onRefused = () => metrics.rateLimited(name);
    return sharedLimits?.limiter(name, perMinute, onRefused) ?? new InProcessRateLimiter(perMinute, clock, onRefused);
  };
  const applied = await migrate(database);
  if (applied.length > 0) log.info({ migrations: applied }, "applied migrations");

  const closing = new AbortController();
  // connect-node listens on the shutdown signal once per call in flight.
  setMaxListeners(0, closing.signal);
  const prisma = database.prisma;
  const audit = new AuditLog({
    prisma,
    sql: database.sql,
    key: auditChainKey(rootKey),
    clock,
    log,
    batches: metrics.groupCommit("audit"),
    ...(tracing && { tracing }),
  });
  await audit.init();
  await prisma.$transaction((tx) => ensureSigningKeys(tx, rootKey));
  const keyRing = new KeyRing({ prisma, rootKey, clock });
  await keyRing.reload();
  const feed = new RevocationFeed({
    prisma,
    clock,
    log,
    pollMs: config.revocationPollMs,
    onSigningKeysChanged: () => keyRing.reload(),
    metrics,
  });
  await feed.start();
  const ctx: BrokerContext = {
    prisma,
    sql: database.sql,
    audit,
    clock,
    log,
    rootKey,
    rootOfTrust,
    config,
    feed,
    closing: closing.signal,
  };
  const actions = grantableActions(services);
  const bootstrapped = await bootstrap(ctx, actions);
  // The developer portal signs people in with the authorization code grant: its client is always there.
  await registerDeveloperPortalClient(ctx, config.publicUrl, actionScopes(actions));

  const replay = databaseReplayGuard(database);
  const lastUsed = new LastUsedRecorder(prisma);
  lastUsed.start();
  const apiKeyCache = new ApiKeyCache();
  const apiKeys = apiKeyAuthenticator({
    prisma,
    hashKey: rootKey.deriveKey(apiKeyHashPurpose),
    clock,
    lastUsed,
    cache: apiKeyCache,
  });
  const authFailures = new FailedAuthentications(limiter("auth_failures", config.rateLimits.authFailuresPerMinute));
  const tokens: TokenDeps = {
    prisma,
    audit,
    clock,
    keyRing,
    feed,
    replay,
    nonces: config.dpopNonceRequired ? dpopNonces(rootKey.deriveKey(keyPurposes.dpopNonce), clock) : undefined,
    mintLimiter: limiter("mints", config.rateLimits.mintsPerMinute),
    revokeLimiter: limiter("revocations", config.rateLimits.revocationsPerMinute),
    authFailures,
    config,
    verified: new VerifiedTokens(),
    ...(tracing && { tracing }),
  };
  const device: DeviceDeps = {
    ...tokens,
    rootKeyHash: rootKey.deriveKey(refreshTokenHashPurpose),
    deviceConfig: config.deviceFlow,
    codeFailures: limiter("user_code_failures", config.rateLimits.userCodeFailuresPerMinute),
    codeFailuresPerPerson: limiter(
      "user_code_failures_per_person",
      config.rateLimits.userCodeFailuresPerMinutePerPerson,
    ),
    codeFailuresGlobal: limiter("user_code_failures_global", config.rateLimits.userCodeFailuresPerMinuteGlobal),
    signInBackoff: sharedLimits
      ? new SharedSignInBackoff(database.sql, config.signIn, clock, rootKey.deriveKey(keyPurposes.signInBackoffKey))
      : new InProcessSignInBackoff(config.signIn, clock),
  };
  const health = new HealthMonitor(services.map((s) => s.typeName));
  const authenticator = authenticatorChain([apiKeys, tokenAuthenticator(tokens)]);
  const clients: ClientAuthenticationDeps = {
    prisma,
    clock,
    replay,
    nonces: tokens.nonces,
    apiKeys,
    issuer: config.publicUrl,
    ...(tracing && { tracing }),
  };
  const validator = requestValidator(services);
  // One policy step for the RPCs (guard) and the HTTP routes that share their policy.
  const policy: PolicyDeps = {
    authenticator,
    audit,
    publicUrl: config.publicUrl,
    authFailures,
    clients,
    ...(tracing && { tracing }),
  };
  const originOf = callOrigins(config.trustedProxies);
  const routerDeps: HttpRouterDeps = { ...policy, log, validator, originOf, metrics };
  // What every instance keeps for itself: single-use values and feed entries
  // forgotten once expired, API keys dropped from the cache when the feed
  // names them, last-use times written at shutdown.
  const deadlines = new Deadlines(config.requestTimeoutMs);
  const kernel: BrokerModule = {
    name: "kernel",
    jobs: [
      { name: "deadline sweep", everyMs: 100, run: async () => deadlines.sweep() },
      { name: "replay guard prune", everyMs: 60_000, run: (now) => replay.prune(now) },
      { name: "revocation feed prune", everyMs: 60_000, run: (now) => pruneExpired(prisma, "revocation_event", now) },
      { name: "rate limit prune", everyMs: 60_000, run: (now) => pruneExpired(prisma, "rate_limit", now) },
    ],
    onRevocation(entry) {
      if (entry.kind === "principal") apiKeyCache.forgetPrincipal(entry.subject);
      if (entry.kind === "api_key") apiKeyCache.forgetKey(entry.subject);
    },
    async close() {
      await lastUsed.stop();
      await sharedLimits?.close();
    },
  };
  const modules: BrokerModule[] = [
    kernel,
    ...domainModules({
      ctx,
      tokens,
      device,
      oauth: { tokens, device, publicUrl: config.publicUrl },
      actions,
      metrics,
    }),
    healthModule(health, () => database.ping(), closing.signal),
    metricsModule(
      metrics,
      { authenticator, authFailures, audit, publicUrl: config.publicUrl },
      config.metricsAddress !== undefined,
    ),
  ];
  for (const module of modules) if (module.onRevocation) feed.subscribe((entry) => module.onRevocation?.(entry));
  const jobs = startJobs(jobsOf(modules), { clock, log });

  return {
    routes: registerServices(modules),
    interceptors: [
      // Outermost: the span covers the whole chain, and observe logs its ids;
      // cacheControl sees every answer, errors already translated by observe.
      ...(tracing ? [traceCalls(tracing)] : []),
      cacheControl,
      observe({ log, metrics, ...(tracing && { tracing }) }),
      deadlines.interceptor,
      guard(policy),
      // Validation last, right before the handler, which is where the checks
      // it replaces ran: inside observe, so a refusal carries the request id,
      // gets its log line and is translated like every error; after guard, so
      // who may not call the RPC hears "unauthenticated" or "denied" and never
      // which field it got wrong (no probing, no work spent on strangers), and
      // so a refused argument on an audit_every_refusal RPC is still audited
      // (guard audits what is thrown beneath it).
      validateRequests(validator),
    ],
    http: httpRouter(routesOf(modules), routerDeps),
    routerDeps,
    originOf,
    metrics,
    bootstrap: bootstrapped,
    database,
    closing: closing.signal,
    stopServing() {
      health.setServing(false);
      closing.abort(); // long-lived streams (tail, watch) end now
    },
    async close() {
      await jobs.stop();
      await feed.stop();
      for (const module of [...modules].reverse()) await module.close?.();
      await audit.close();
      // After the last audit batch: what is still queued is exported now.
      await tracing?.shutdown();
      await rootOfTrust.close();
      if (!options.database) await database.close();
    },
  };
}
