// `npm run bench:rate-limits` (needs AEGIS_TEST_DATABASE_URL): what sharing
// the security limits through PostgreSQL costs (README "Several
// instances"). Two brokers on one PostgreSQL database, in this process, one
// with the shared limits (as every broker on PostgreSQL runs) and one with
// the in-process ones, which it gets by being told its database is the
// embedded kind; nothing else in the broker depends on that. Load
// alternates between them in slices, so the host's drift hits both alike.
// Not part of `npm test`: timings belong here, never in tests.
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import { FailedAuthentications } from "../../src/auth/failed-authentications.js";
import { InProcessRateLimiter } from "../../src/core/rate-limit.js";
import { SharedRateLimits } from "../../src/core/shared-rate-limit.js";
import { generateCredential } from "../../src/protocol/credential-format.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { TestClock } from "../support/clock.js";
import { createTestDatabase } from "../support/databases.js";

const sliceMs = Number(process.env.AEGIS_BENCH_SLICE_MS ?? 2_000);
const slices = Number(process.env.AEGIS_BENCH_SLICES ?? 4);
const inFlight = 16;

interface Measured {
  perSecond: number;
  p50: number;
  p99: number;
}

/** Runs `op` with `concurrency` in flight for `ms`; latencies in ms. */
async function load(op: (i: number) => Promise<unknown>, ms: number, concurrency: number): Promise<number[]> {
  const latencies: number[] = [];
  const until = performance.now() + ms;
  let i = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const started = performance.now();
        await op(i++);
        latencies.push(performance.now() - started);
      }
    }),
  );
  return latencies;
}

/** Alternates slices of `a` and `b`; the medians of each. */
async function compare(
  label: string,
  cases: Record<"shared" | "in-process", (i: number) => Promise<unknown>>,
  concurrency: number,
): Promise<void> {
  const all: Record<string, number[]> = { shared: [], "in-process": [] };
  const rates: Record<string, number[]> = { shared: [], "in-process": [] };
  for (const op of Object.values(cases)) await load(op, 300, concurrency); // warm-up
  for (let s = 0; s < slices; s++) {
    for (const [name, op] of Object.entries(cases)) {
      const latencies = await load(op, sliceMs, concurrency);
      for (const latency of latencies) all[name]?.push(latency);
      rates[name]?.push((latencies.length * 1000) / sliceMs);
    }
  }
  const summary = (name: string): Measured => {
    const sorted = [...(all[name] ?? [])].sort((x, y) => x - y);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
    const r = [...(rates[name] ?? [])].sort((x, y) => x - y);
    return { perSecond: r[Math.floor(r.length / 2)] ?? Number.NaN, p50: at(0.5), p99: at(0.99) };
  };
  const [shared, local] = [summary("shared"), summary("in-process")];
  const line = (name: string, m: Measured) =>
    `  ${name.padEnd(11)} ${m.perSecond.toFixed(0).padStart(7)}/s  p50 ${m.p50.toFixed(3)} ms  p99 ${m.p99.toFixed(3)} ms`;
  console.log(`${label} (${concurrency} in flight)\n${line("shared", shared)}\n${line("in-process", local)}`);
}

const db = await createTestDatabase("postgres");
const clock = new TestClock();
// Limits high enough never to refuse: the cost measured is counting.
const env = {
  AEGIS_ROOT_KEY: randomBytes(32).toString("base64url"),
  AEGIS_LOG_LEVEL: "warn",
  AEGIS_RATE_LIMIT_MINTS_PER_MINUTE: "10000000",
  AEGIS_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: "10000000",
};
const shared = await startTestBroker("postgres", env, db);
const inProcess: TestBroker = await startTestBroker("postgres", env, {
  ...db,
  database: { ...db.database, kind: "pglite" },
});
try {
  // The limiter alone: one failed-authentication hit, and the check every authenticated call makes first.
  const limits = new SharedRateLimits(db.database.sql, clock);
  const sharedFailures = new FailedAuthentications(limits.limiter("bench_auth", 10_000_000));
  const localFailures = new FailedAuthentications(new InProcessRateLimiter(10_000_000, clock));
  const address = (i: number) => `10.0.${(i >> 8) & 255}.${i & 255}`;
  for (const concurrency of [1, inFlight]) {
    await compare(
      "failed-authentication hit (FailedAuthentications.record)",
      { shared: (i) => sharedFailures.record(address(i)), "in-process": (i) => localFailures.record(address(i)) },
      concurrency,
    );
    await compare(
      "the check before every authentication (refuseIfOver)",
      {
        shared: (i) => sharedFailures.refuseIfOver(address(i)),
        "in-process": (i) => localFailures.refuseIfOver(address(i)),
      },
      concurrency,
    );
  }

  // Over the wire: a MintToken (two mint hits and the check) and a refused bad key (the check and a hit).
  const tokens = (t: TestBroker) => createClient(TokenService, t.transport("connect", shared.adminKey));
  const mint = (t: TestBroker) => {
    const client = tokens(t);
    return () => client.mintToken({ audience: t.config.publicUrl, scopes: [] });
  };
  const badKey = (t: TestBroker) => {
    const transport = createConnectTransport({
      baseUrl: t.broker.url,
      httpVersion: "1.1",
      interceptors: [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${generateCredential("apiKey").text}`);
          return next(req);
        },
      ],
    });
    const client = createClient(PrincipalService, transport);
    return () => client.whoAmI({}).catch(() => undefined);
  };
  for (const concurrency of [1, inFlight]) {
    await compare("MintToken RPC on PostgreSQL", { shared: mint(shared), "in-process": mint(inProcess) }, concurrency);
    await compare(
      "WhoAmI with a bad API key (401) on PostgreSQL",
      { shared: badKey(shared), "in-process": badKey(inProcess) },
      concurrency,
    );
  }
  await limits.close();
} finally {
  await inProcess.stop();
  await shared.stop();
  await db.drop();
}
