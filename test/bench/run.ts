// `npm run bench`: starts a real broker (embedded PGlite; also PostgreSQL
// when AEGIS_TEST_DATABASE_URL is set) as a child process, drives each case
// from a separate load-generator process, and prints requests/s, p50/p99 and
// each case's ratio to the no-op ceiling measured in the same run. Each
// database runs once per worker count in AEGIS_BENCH_WORKERS (default: one
// process, then two workers).
// Not part of `npm test`: timings belong here, never in tests.
//
// AEGIS_BENCH_COMPARE=DIR compares this checkout (B) with the one in DIR (A)
// instead: both brokers run side by side and each case's load alternates
// between them in short slices, so the host's drift (on the bench host its
// speed wanders by a third within minutes) hits both alike. It prints the
// medians and the median per-slice ratio B/A.
// AEGIS_BENCH_PAIR=A,B does the same for two cases of this checkout on one
// broker (MintToken against /oauth/token: AEGIS_BENCH_PAIR=oauth-token,mint).

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { AgentService, KeyUse } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { ApiKeyService } from "../../gen/proto/aegis/apikey/v1/apikey_pb.js";
import { CredentialService } from "../../gen/proto/aegis/credential/v1/credential_pb.js";
import { EncryptionAlgorithm, KeyService, KeySpec, KeyUsage } from "../../gen/proto/aegis/kms/v1/kms_pb.js";
import { LeaseService } from "../../gen/proto/aegis/lease/v1/lease_pb.js";
import { ResourceServerService } from "../../gen/proto/aegis/resourceserver/v1/resource_server_pb.js";
import { TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import { sealCredential, verifyAccessToken } from "../../src/sdk/index.js";
import { createPostgresDatabase, dropPostgresDatabase } from "../support/databases.js";
import { portalSearch } from "./portal-search.js";

const seconds = Number(process.env.AEGIS_BENCH_SECONDS ?? 10);
const inFlight = 32;
/** `AEGIS_BENCH_CASES=redeem-lease,mint`: run only these cases (the ceiling always runs). */
const only = process.env.AEGIS_BENCH_CASES?.split(",");
/** `AEGIS_BENCH_WORKERS=1,2`: the AEGIS_WORKERS settings to run each database with. */
const workerCounts = (process.env.AEGIS_BENCH_WORKERS ?? "1,2").split(",");
const tsx = path.resolve("node_modules/.bin/tsx");
/** Another checkout to compare with (its own node_modules and generated code), and how. */
const compareWith = process.env.AEGIS_BENCH_COMPARE;
/** `AEGIS_BENCH_PAIR=mint,oauth-token`: two cases of this checkout, alternating, B against A. */
const pair = process.env.AEGIS_BENCH_PAIR?.split(",");
if (pair && pair.length !== 2) throw new Error("AEGIS_BENCH_PAIR names two cases: A,B");
const slices = Number(process.env.AEGIS_BENCH_SLICES ?? 10);
const sliceSeconds = Number(process.env.AEGIS_BENCH_SECONDS ?? 3);
/**
 * Unmeasured seconds at the start of each case: connections open and the
 * case's code is compiled (both the broker's and the generator's). Without
 * them the first half second, at about twice the steady latency, made up a
 * third to a half of a case's slowest 1% (measured on the bench host).
 * Compare mode's slices warm up the same way.
 */
const warmupSeconds = 1;

interface Result {
  requests: number;
  /** Broker CPU (all its processes) per request, µs: steadier than req/s on a shared host. */
  cpuPerRequest?: number;
  /** The part of it spent on the event loops (main threads). */
  loopPerRequest?: number;
  /** The load generator's own CPU per request, µs: it shares the host's cores with the broker. */
  loadCpuPerRequest?: number;
  errors: number;
  firstError: string;
  perSecond: number;
  p50: number;
  p99: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

interface RunningBroker {
  readonly url: string;
  /** The bootstrap admin's key. */
  readonly key: string;
  readonly child: ChildProcess;
}

/** Starts the broker of the checkout in `cwd` (this one by default) on a new embedded data directory. */
async function startBroker(env: Record<string, string>, cwd = process.cwd()): Promise<RunningBroker> {
  const dir = mkdtempSync(path.join(tmpdir(), "aegis-bench-"));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const credentialFile = path.join(dir, "admin.key");
  // AEGIS_BENCH_PROFILE=DIR writes the broker's CPU profile there (open it in Chrome DevTools).
  const profile = process.env.AEGIS_BENCH_PROFILE;
  const child = spawn(
    process.execPath,
    [...(profile ? ["--cpu-prof", `--cpu-prof-dir=${profile}`] : []), "--import", "tsx", "src/cli/main.ts", "serve"],
    {
      env: {
        ...process.env,
        AEGIS_DATA_DIR: dir,
        AEGIS_PORT: String(port),
        AEGIS_PUBLIC_URL: url,
        AEGIS_LOG_LEVEL: "warn",
        AEGIS_BOOTSTRAP_CREDENTIAL_FILE: credentialFile,
        AEGIS_RATE_LIMIT_MINTS_PER_MINUTE: "10000000",
        ...env,
      },
      stdio: ["ignore", "ignore", "inherit"],
      cwd,
    },
  );
  const until = Date.now() + 60_000;
  while (
    !(await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (Date.now() > until || child.exitCode !== null) throw new Error("broker did not start");
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, key: readFileSync(credentialFile, "utf8").trim(), child };
}

/**
 * Runs the load generator against `broker` for `forSeconds` measured seconds
 * after `warmupSeconds` unmeasured ones, and adds the broker's CPU per
 * request over the measured part.
 */
function load(broker: RunningBroker, job: Record<string, unknown>, forSeconds: number): Promise<Result> {
  const pid = broker.child.pid as number;
  return new Promise((resolve, reject) => {
    const child = spawn(
      tsx,
      ["test/bench/load.ts", JSON.stringify({ url: broker.url, seconds: forSeconds, warmupSeconds, inFlight, ...job })],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let before = cpuSeconds(pid);
    let last = "";
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (line === '{"phase":"measure"}') before = cpuSeconds(pid);
      else last = line;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`load generator exited with ${code}`));
      const after = cpuSeconds(pid);
      const result = JSON.parse(last) as Result;
      const perRequest = (cpu: number) => (cpu * 1e6) / Math.max(result.requests, 1);
      resolve({
        ...result,
        cpuPerRequest: perRequest(after.all - before.all),
        loopPerRequest: perRequest(after.loops - before.loops),
      });
    });
  });
}

const clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }));

/**
 * CPU seconds used so far by `pid` and its descendants (cluster workers), from
 * /proc: by all their threads, and by their main threads alone (the event
 * loops, which is what one broker process saturates first).
 */
function cpuSeconds(pid: number): { all: number; loops: number } {
  // Fields after the parenthesised command: state ppid … utime(14) stime(15).
  const ticksOf = (file: string) => {
    const fields = readFileSync(file, "utf8").split(") ")[1]?.split(" ") ?? [];
    return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
  };
  const stats = readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .flatMap((name) => {
      try {
        const all = ticksOf(`/proc/${name}/stat`);
        return [
          {
            pid: Number(name),
            ppid: all.ppid,
            ticks: all.ticks,
            loop: ticksOf(`/proc/${name}/task/${name}/stat`).ticks,
          },
        ];
      } catch {
        return []; // exited meanwhile
      }
    });
  const tree = new Set([pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const s of stats) if (!tree.has(s.pid) && tree.has(s.ppid)) grew = tree.add(s.pid).size > 0;
  }
  const mine = stats.filter((s) => tree.has(s.pid));
  const sum = (pick: (s: (typeof mine)[number]) => number) =>
    mine.reduce((total, s) => total + pick(s), 0) / clockTicks;
  return { all: sum((s) => s.ticks), loops: sum((s) => s.loop) };
}

function bearer(key: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${key}`);
    return next(req);
  };
}

interface Case {
  readonly id: string;
  readonly name: string;
  /** Drives the broker for `seconds`. */
  readonly run: (seconds: number) => Promise<Result>;
  /** The issue's target: at least `perSecond`, and a p99 under `p99Ms`. */
  readonly target?: Target;
  /** Runs in this process: the broker's CPU says nothing about it. */
  readonly inProcess?: boolean;
}

interface Target {
  readonly perSecond: number;
  readonly p99Ms: number;
}

const tokenTarget = (perSecond: number): Target => ({ perSecond, p99Ms: 25 });

function judged(target: Target | undefined, r: Result): string {
  if (!target) return "";
  const met = r.perSecond >= target.perSecond && r.p99 < target.p99Ms;
  return `≥ ${target.perSecond}/s, p99 < ${target.p99Ms} ms ${met ? "met" : "MISSED"}`;
}

/** Sets up what the cases need on `broker` (agents, keys, tokens, leases); returns the cases, ceiling first. */
async function prepare(broker: RunningBroker): Promise<Case[]> {
  const { url } = broker;
  const admin = createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors: [bearer(broker.key)] });
  const agents = createClient(AgentService, admin);
  // The audience the cases mint for. A broker from before resource servers
  // (compare mode) has no such service and takes any audience.
  await createClient(ResourceServerService, admin)
    .createResourceServer({ identifier: "https://api.example.com", displayName: "bench API" })
    .catch((error: unknown) => {
      if ((error as { code?: Code }).code !== Code.Unimplemented) throw error;
    });
  const { agent } = await agents.registerAgent({ displayName: "bench agent", scopes: [] });
  const apiKey = (await createClient(ApiKeyService, admin).createApiKey({ principalId: agent?.id ?? "" })).secret;
  const { agent: rs } = await agents.registerAgent({ displayName: "resource server", scopes: ["introspect.token"] });
  const rsKey = (await createClient(ApiKeyService, admin).createApiKey({ principalId: rs?.id ?? "" })).secret;
  const asRs = createClient(
    TokenService,
    createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors: [bearer(rsKey)] }),
  );
  const rsToken = (
    await asRs.mintToken({ audience: url, scopes: ["introspect.token"], lifetime: durationFromMs(900_000) })
  ).accessToken;
  const asAgent = createClient(
    TokenService,
    createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors: [bearer(apiKey)] }),
  );
  const target = (
    await asAgent.mintToken({ audience: "https://api.example.com", scopes: [], lifetime: durationFromMs(900_000) })
  ).accessToken;
  const lease = await leaseSetup(url, admin);
  const kms = await kmsSetup(admin);
  // DPoP proofs are signed before a run's clock starts: enough for the run (per second × seconds), not more.
  return [
    { id: "health", name: "Health/Check (no-op ceiling)", run: (s) => load(broker, { case: "health" }, s) },
    {
      id: "mint",
      name: "MintToken (API key)",
      run: (s) => load(broker, { case: "mint", apiKey }, s),
      target: tokenTarget(3000),
    },
    {
      id: "oauth-token",
      name: "/oauth/token (client_credentials)",
      run: (s) => load(broker, { case: "oauth-token", apiKey, clientId: agent?.id ?? "" }, s),
    },
    {
      id: "mint-dpop",
      name: "MintToken (DPoP-bound)",
      run: (s) => load(broker, { case: "mint-dpop", apiKey, proofs: 6_000 * (s + warmupSeconds) }, s),
      target: tokenTarget(2000),
    },
    {
      id: "introspect",
      name: "IntrospectToken",
      run: (s) => load(broker, { case: "introspect", bearer: rsToken, token: target }, s),
      target: tokenTarget(5000),
    },
    {
      id: "sdk-verify",
      name: "SDK verifyAccessToken (in-process)",
      run: (s) => verifyInProcess(url, target, s),
      inProcess: true,
    },
    {
      id: "create-lease",
      name: "CreateLease (DPoP)",
      run: (s) => load(broker, { case: "create-lease", proofs: 4_000 * (s + warmupSeconds), ...lease }, s),
    },
    {
      id: "redeem-lease",
      name: "RedeemLease (DPoP, multi-use)",
      run: (s) => load(broker, { case: "redeem-lease", proofs: 4_000 * (s + warmupSeconds), ...lease }, s),
      target: { perSecond: 1500, p99Ms: 40 },
    },
    ...kms.map((k) => ({
      id: k.id,
      name: k.name,
      run: (s: number) => load(broker, { case: "rpc", bearer: broker.key, path: k.path, body: k.body }, s),
      ...(k.target ? { target: k.target } : {}),
    })),
  ];
}

/**
 * KMS keys for the key-operation cases, and each case's request (every
 * answer waits for its audit event). None on a broker from before the KMS
 * (compare mode).
 */
async function kmsSetup(admin: Transport) {
  const keys = createClient(KeyService, admin);
  const create = async (spec: KeySpec, usage = KeyUsage.UNSPECIFIED) =>
    (await keys.createKey({ spec, usage, activate: true })).key?.id ?? "";
  try {
    await keys.listKeys({ pageSize: 1 });
  } catch (error) {
    if ((error as { code?: Code }).code === Code.Unimplemented) return [];
    throw error;
  }
  const [es256, ed25519, rsa, aes] = [
    await create(KeySpec.EC_P256),
    await create(KeySpec.ED25519),
    await create(KeySpec.RSA_2048, KeyUsage.SIGN_VERIFY),
    await create(KeySpec.AES_256),
  ];
  const message = Buffer.from("bench message to sign").toString("base64");
  const kib = randomBytes(1024);
  const { ciphertext } = await keys.encrypt({ keyId: aes, algorithm: EncryptionAlgorithm.AES_GCM, plaintext: kib });
  const procedure = (method: string) => `/${KeyService.typeName}/${method}`;
  const sign = (keyId: string, algorithm: string) => JSON.stringify({ keyId, algorithm, input: { message } });
  return [
    {
      id: "kms-sign-es256",
      name: "Sign (ES256)",
      path: procedure("Sign"),
      body: sign(es256, "SIGNING_ALGORITHM_ECDSA_SHA_256"),
      target: { perSecond: 5000, p99Ms: 25 },
    },
    {
      id: "kms-sign-ed25519",
      name: "Sign (Ed25519)",
      path: procedure("Sign"),
      body: sign(ed25519, "SIGNING_ALGORITHM_ED25519"),
    },
    {
      id: "kms-sign-rsa-pss",
      name: "Sign (RSA-2048 PSS)",
      path: procedure("Sign"),
      body: sign(rsa, "SIGNING_ALGORITHM_RSASSA_PSS_SHA_256"),
    },
    {
      id: "kms-encrypt",
      name: "Encrypt (AES-256-GCM, 1 KiB)",
      path: procedure("Encrypt"),
      body: JSON.stringify({
        keyId: aes,
        algorithm: "ENCRYPTION_ALGORITHM_AES_GCM",
        plaintext: kib.toString("base64"),
        encryptionContext: { app: "bench" },
      }),
      target: { perSecond: 6000, p99Ms: 25 },
    },
    {
      id: "kms-decrypt",
      name: "Decrypt (AES-256-GCM, 1 KiB)",
      path: procedure("Decrypt"),
      body: JSON.stringify({ keyId: aes, ciphertext: Buffer.from(ciphertext).toString("base64") }),
    },
    {
      id: "kms-data-key",
      name: "GenerateDataKey (AES-256)",
      path: procedure("GenerateDataKey"),
      body: JSON.stringify({
        keyId: aes,
        algorithm: "ENCRYPTION_ALGORITHM_AES_GCM",
        dataKeySpec: "DATA_KEY_SPEC_AES_256",
      }),
    },
  ] as { id: string; name: string; path: string; body: string; target?: Target }[];
}

/** The ceiling always runs; AEGIS_BENCH_CASES picks among the others. */
const selected = (cases: Case[]) => cases.filter((c, i) => i === 0 || !only || only.includes(c.id));

async function stop(broker: RunningBroker): Promise<void> {
  broker.child.kill("SIGTERM");
  await new Promise((r) => broker.child.once("exit", r));
}

async function benchDatabase(label: string, env: Record<string, string>) {
  const broker = await startBroker(env);
  try {
    const rows: [Case, Result][] = [];
    for (const c of selected(await prepare(broker))) {
      rows.push([c, await c.run(seconds)]);
    }
    const ceiling = (rows[0] as [Case, Result])[1];

    console.log(`\n${label}: ${inFlight} in flight, ${seconds} s per case after ${warmupSeconds} s of warm-up`);
    console.log(
      "case                                   req/s     p50 ms   p99 ms   vs ceiling  cpu µs/req  loop µs/req  load µs/req  errors  target",
    );
    for (const [{ name, target }, r] of rows) {
      console.log(
        `${name.padEnd(36)} ${r.perSecond.toFixed(0).padStart(8)} ${r.p50.toFixed(2).padStart(9)} ${r.p99.toFixed(2).padStart(8)} ${`${((100 * r.perSecond) / ceiling.perSecond).toFixed(0)}%`.padStart(11)} ${(r.cpuPerRequest?.toFixed(0) ?? "").padStart(11)} ${(r.loopPerRequest?.toFixed(0) ?? "").padStart(12)} ${(r.loadCpuPerRequest?.toFixed(0) ?? "").padStart(12)} ${String(r.errors).padStart(7)}  ${judged(target, r)}`,
      );
      if (r.errors) console.log(`  first error: ${r.firstError}`);
    }
  } finally {
    await stop(broker);
  }
}

const median = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)] ?? Number.NaN;

/** Runs A and B in alternating slices, A first in every other round, so the host's drift hits both alike. */
async function inSlices(a: Case, b: Case): Promise<{ a: Result; b: Result }[]> {
  const runs: { a: Result; b: Result }[] = [];
  for (let i = 0; i < slices; i++) {
    if (i % 2 === 0) {
      const ra = await a.run(sliceSeconds);
      runs.push({ a: ra, b: await b.run(sliceSeconds) });
    } else {
      const rb = await b.run(sliceSeconds);
      runs.push({ a: await a.run(sliceSeconds), b: rb });
    }
  }
  return runs;
}

const slicesHeader = "case                                 A req/s  B req/s    B/A   A cpu µs  B cpu µs    B/A  errors";

/** One line of slices: the medians of A and B, and the median per-slice ratio B/A. */
function printSlices(name: string, runs: { a: Result; b: Result }[]): void {
  const rate = (r: Result) => r.perSecond;
  const cpu = (r: Result) => r.cpuPerRequest ?? Number.NaN;
  const errors = runs.reduce((n, r) => n + r.a.errors + r.b.errors, 0);
  const columns: [number[], number, number][] = [
    [runs.map((r) => rate(r.a)), 0, 8],
    [runs.map((r) => rate(r.b)), 0, 8],
    [runs.map((r) => rate(r.b) / rate(r.a)), 3, 6],
    [runs.map((r) => cpu(r.a)), 0, 10],
    [runs.map((r) => cpu(r.b)), 0, 9],
    [runs.map((r) => cpu(r.b) / cpu(r.a)), 3, 6],
  ];
  const cells = columns.map(([values, digits, width]) => median(values).toFixed(digits).padStart(width));
  console.log([name.padEnd(36), ...cells, String(errors).padStart(7)].join(" "));
}

/** Broker A (checkout `other`) against B (this one): each case in alternating slices. */
async function compareDatabase(label: string, env: Record<string, string>, other: string) {
  // Each broker has a database of its own (the two checkouts may differ in migrations).
  const otherUrl = env.AEGIS_DATABASE_URL ? await createPostgresDatabase() : undefined;
  const a = await startBroker(otherUrl ? { ...env, AEGIS_DATABASE_URL: otherUrl } : env, other);
  const b = await startBroker(env);
  try {
    const [casesA, casesB] = [await prepare(a), await prepare(b)];
    console.log(
      `\n${label}: A = ${other}, B = this checkout; ${slices} slices of ${sliceSeconds} s per case and broker`,
    );
    console.log(slicesHeader);
    for (const caseB of selected(casesB).filter((c) => !c.inProcess)) {
      const caseA = casesA.find((c) => c.id === caseB.id) as Case;
      printSlices(caseB.name, await inSlices(caseA, caseB));
    }
  } finally {
    await Promise.all([stop(a), stop(b)]);
    if (otherUrl) await dropPostgresDatabase(otherUrl);
  }
}

/** Two cases of one broker (`AEGIS_BENCH_PAIR=A,B`) in alternating slices: B against A in the same run. */
async function pairDatabase(label: string, env: Record<string, string>, ids: readonly string[]) {
  const broker = await startBroker(env);
  try {
    const cases = await prepare(broker);
    const [a, b] = ids.map((id) => {
      const found = cases.find((c) => c.id === id && !c.inProcess);
      if (!found) throw new Error(`AEGIS_BENCH_PAIR: no case ${id} (cases: ${cases.map((c) => c.id).join(", ")})`);
      return found;
    }) as [Case, Case];
    console.log(`\n${label}: A = ${a.name}, B = ${b.name}; ${slices} slices of ${sliceSeconds} s each`);
    console.log(slicesHeader);
    printSlices(`${b.id} against ${a.id}`, await inSlices(a, b));
  } finally {
    await stop(broker);
  }
}

/**
 * An agent with an encryption key and lease grants on one target, a
 * credential sealed for it, a DPoP key and a token bound to it, and
 * multi-use leases enough for a whole run.
 */
async function leaseSetup(url: string, admin: Transport) {
  const target = { provider: "bench", app: "billing", account: "deploy" };
  const selector = "provider:bench:app:billing:account:deploy";
  const scopes = [`credential.lease.create:${selector}`, `credential.lease.redeem:${selector}`];
  const agents = createClient(AgentService, admin);
  const { agent } = await agents.registerAgent({ displayName: "bench lease agent", scopes });
  const agentId = agent?.id ?? "";
  const apiKey = (await createClient(ApiKeyService, admin).createApiKey({ principalId: agentId })).secret;
  const encryption = await generateKeyPair("ECDH-ES+A256KW", { crv: "X25519", extractable: true });
  const publicJwk = await exportJWK(encryption.publicKey);
  const { key } = await agents.addAgentKey({
    agentId,
    use: KeyUse.ENCRYPTION,
    jwkJson: JSON.stringify(publicJwk),
  });
  await createClient(CredentialService, admin).registerCredential({
    target,
    displayName: "bench",
    sealedJwe: await sealCredential("bench secret", [{ kid: key?.id ?? "", jwk: publicJwk }]),
  });
  const dpop = await generateKeyPair("ES256", { extractable: true });
  const dpopJwk = await exportJWK(dpop.privateKey);
  const { d: _d, ...dpopPublic } = dpopJwk;
  const proof = (path: string, token?: string) =>
    new SignJWT({
      htm: "POST",
      htu: `${url}${path}`,
      ...(token ? { ath: createHash("sha256").update(token).digest("base64url") } : {}),
    })
      .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: dpopPublic })
      .setIssuedAt()
      .setJti(randomUUID())
      .sign(dpop.privateKey);
  const asAgent = createClient(
    TokenService,
    createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors: [bearer(apiKey)] }),
  );
  const token = (
    await asAgent.mintToken(
      { audience: url, scopes, lifetime: durationFromMs(900_000) },
      { headers: { dpop: await proof("/aegis.token.v1.TokenService/MintToken") } },
    )
  ).accessToken;
  const leases = createClient(
    LeaseService,
    createConnectTransport({
      baseUrl: url,
      httpVersion: "1.1",
      interceptors: [
        (next) => async (req) => {
          req.header.set("authorization", `DPoP ${token}`);
          req.header.set("dpop", await proof(new URL(req.url).pathname, token));
          return next(req);
        },
      ],
    }),
  );
  const leaseIds: string[] = [];
  for (let i = 0; i < 8; i++) {
    const { lease } = await leases.createLease({ target, maxUses: 10_000, lifetime: durationFromMs(3_600_000) });
    leaseIds.push(lease?.id ?? "");
  }
  return { bearer: token, dpopJwk, target, leaseIds };
}

/** The SDK's offline verification, sequentially in this process, with the JWKS fetched once. */
async function verifyInProcess(url: string, token: string, forSeconds: number): Promise<Result> {
  const jwks = (await (await fetch(`${url}/.well-known/jwks.json`)).json()) as { keys: [] };
  const options = { issuer: url, audience: "https://api.example.com", jwks };
  const latencies: number[] = [];
  const started = performance.now() + warmupSeconds * 1000;
  const deadline = started + forSeconds * 1000;
  while (performance.now() < deadline) {
    const t0 = performance.now();
    await verifyAccessToken(token, options);
    if (t0 >= started) latencies.push(performance.now() - t0);
  }
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.floor(q * latencies.length)] ?? 0;
  return {
    requests: latencies.length,
    errors: 0,
    firstError: "",
    perSecond: latencies.length / ((performance.now() - started) / 1000),
    p50: at(0.5),
    p99: at(0.99),
  };
}

// Two workers start together; both are up long before the setup above ends and a case starts.
const processes = (workers: string) => (workers === "1" ? "one process" : `${workers} workers`);
const bench = (label: string, env: Record<string, string>) =>
  compareWith
    ? compareDatabase(label, env, path.resolve(compareWith))
    : pair
      ? pairDatabase(label, env, pair)
      : benchDatabase(label, env);
for (const workers of workerCounts) {
  await bench(`PGlite (embedded), ${processes(workers)}`, { AEGIS_WORKERS: workers });
}
// The portal's search runs in the browser: once, whatever the database, and
// only in a plain run (not when comparing, nor when cases are picked).
if (!compareWith && !pair && !only) {
  const broker = await startBroker({});
  try {
    await portalSearch(broker.url);
  } finally {
    await stop(broker);
  }
}
if (process.env.AEGIS_TEST_DATABASE_URL) {
  for (const workers of workerCounts) {
    const url = await createPostgresDatabase();
    try {
      await bench(`PostgreSQL, ${processes(workers)}`, {
        AEGIS_WORKERS: workers,
        AEGIS_DATABASE_URL: url,
        AEGIS_ROOT_KEY: Buffer.alloc(32, 1).toString("base64url"),
      });
    } finally {
      await dropPostgresDatabase(url);
    }
  }
}
