// Load generator, run as its own process so it does not share the broker's
// CPU accounting: N requests in flight over keep-alive HTTP/1.1 connections,
// Connect protocol with JSON bodies, for a fixed time. Per-request inputs
// (DPoP proofs) are computed before the clock starts. The first
// `warmupSeconds` drive the broker without being measured (connections open,
// both sides' JIT compiles the path); `{"phase":"measure"}` on stdout marks
// their end. Then one JSON line with the results.
import { createHash, randomUUID } from "node:crypto";
import { exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from "jose";
import { Pool } from "undici";

interface Job {
  readonly url: string;
  readonly case:
    | "health"
    | "mint"
    | "oauth-token"
    | "mint-dpop"
    | "introspect"
    | "create-lease"
    | "redeem-lease"
    | "rpc";
  /** rpc: the procedure's path and its JSON request body, called with `bearer`. */
  readonly path?: string;
  readonly body?: string;
  /** oauth-token: the client id that goes with `apiKey` in client_secret_basic. */
  readonly clientId?: string;
  /** Measured seconds, after the warm-up. */
  readonly seconds: number;
  readonly warmupSeconds?: number;
  readonly inFlight: number;
  readonly apiKey?: string;
  readonly bearer?: string;
  readonly token?: string;
  /** How many DPoP proofs to precompute (upper bound on requests). */
  readonly proofs?: number;
  /** Lease cases: the agent's DPoP private key (its token is `bearer`, DPoP-bound to it). */
  readonly dpopJwk?: JWK;
  readonly target?: { provider: string; app: string; account: string };
  /** Multi-use leases to redeem, round-robin. */
  readonly leaseIds?: string[];
}

const job = JSON.parse(process.argv[2] ?? "{}") as Job;

/** Proofs for `path`, signed before the clock starts, fresh for the whole run. */
async function dpopProofs(
  path: string,
  sign: (payload: Record<string, unknown>) => Promise<string>,
): Promise<string[]> {
  const proofs: string[] = [];
  for (let i = 0; i < (job.proofs ?? 50_000); i++) proofs.push(await sign({ htm: "POST", htu: `${job.url}${path}` }));
  return proofs;
}

/** A signer for proofs by the agent's own key, bound to its token (`ath`). */
async function agentSigner(): Promise<(payload: Record<string, unknown>) => Promise<string>> {
  const { d: _d, ...publicJwk } = job.dpopJwk as JWK;
  const key = await importJWK(job.dpopJwk as JWK, "ES256");
  const ath = createHash("sha256")
    .update(job.bearer ?? "")
    .digest("base64url");
  const iat = Math.floor(Date.now() / 1000) + job.seconds / 2;
  return (payload) =>
    new SignJWT({ ...payload, ath })
      .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: publicJwk })
      .setIssuedAt(iat)
      .setJti(randomUUID())
      .sign(key);
}

async function requests(): Promise<(i: number) => { path: string; headers: Record<string, string>; body: string }> {
  const json = { "content-type": "application/json" };
  switch (job.case) {
    case "health":
      return () => ({ path: "/grpc.health.v1.Health/Check", headers: json, body: "{}" });
    case "mint": {
      const headers = { ...json, authorization: `Bearer ${job.apiKey}` };
      const body = JSON.stringify({ audience: "https://api.example.com", scopes: [] });
      return () => ({ path: "/aegis.token.v1.TokenService/MintToken", headers, body });
    }
    case "oauth-token": {
      // The same mint through the standard door: client_credentials, client_secret_basic.
      const basic = Buffer.from(`${job.clientId}:${job.apiKey}`).toString("base64");
      const headers = { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${basic}` };
      const body = new URLSearchParams({
        grant_type: "client_credentials",
        audience: "https://api.example.com",
      }).toString();
      return () => ({ path: "/oauth/token", headers, body });
    }
    case "mint-dpop": {
      const path = "/aegis.token.v1.TokenService/MintToken";
      const { privateKey, publicKey } = await generateKeyPair("ES256");
      const jwk = await exportJWK(publicKey);
      const proofs: string[] = [];
      const iat = Math.floor(Date.now() / 1000) + job.seconds / 2; // fresh for the whole run
      for (let i = 0; i < (job.proofs ?? 50_000); i++) {
        proofs.push(
          await new SignJWT({ htm: "POST", htu: `${job.url}${path}` })
            .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk })
            .setIssuedAt(iat)
            .setJti(randomUUID())
            .sign(privateKey),
        );
      }
      const body = JSON.stringify({ audience: "https://api.example.com", scopes: [] });
      return (i) => ({
        path,
        headers: { ...json, authorization: `Bearer ${job.apiKey}`, dpop: proofs[i % proofs.length] as string },
        body,
      });
    }
    case "create-lease":
    case "redeem-lease": {
      const method = job.case === "create-lease" ? "CreateLease" : "RedeemLease";
      const path = `/aegis.lease.v1.LeaseService/${method}`;
      const proofs = await dpopProofs(path, await agentSigner());
      const leaseIds = job.leaseIds ?? [];
      const bodies =
        job.case === "create-lease"
          ? [JSON.stringify({ target: job.target, lifetimeSeconds: 60 })]
          : leaseIds.map((leaseId) => JSON.stringify({ leaseId }));
      return (i) => ({
        path,
        headers: { ...json, authorization: `DPoP ${job.bearer}`, dpop: proofs[i % proofs.length] as string },
        body: bodies[i % bodies.length] as string,
      });
    }
    case "rpc": {
      const headers = { ...json, authorization: `Bearer ${job.bearer}` };
      return () => ({ path: job.path as string, headers, body: job.body as string });
    }
    case "introspect": {
      const headers = { ...json, authorization: `Bearer ${job.bearer}` };
      const body = JSON.stringify({ token: job.token });
      return () => ({ path: "/aegis.token.v1.TokenService/IntrospectToken", headers, body });
    }
  }
}

async function main() {
  const make = await requests();
  const pool = new Pool(job.url, { connections: job.inFlight, pipelining: 1 });
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  let firstError = "";
  const started = performance.now() + (job.warmupSeconds ?? 0) * 1000;
  const deadline = started + job.seconds * 1000;
  let cpuBefore = process.cpuUsage();
  const measuring = setTimeout(() => {
    process.stdout.write('{"phase":"measure"}\n');
    cpuBefore = process.cpuUsage();
  }, started - performance.now());
  await Promise.all(
    Array.from({ length: job.inFlight }, async () => {
      while (performance.now() < deadline) {
        const request = make(next++);
        const t0 = performance.now();
        const res = await pool.request({ ...request, method: "POST" });
        const text = await res.body.text();
        if (res.statusCode !== 200) {
          errors++;
          firstError ||= `${res.statusCode} ${text.slice(0, 200)}`;
        }
        if (t0 >= started) latencies.push(performance.now() - t0);
      }
    }),
  );
  clearTimeout(measuring);
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  await pool.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  process.stdout.write(
    `${JSON.stringify({ requests: latencies.length, errors, firstError, perSecond: latencies.length / elapsed, p50: at(0.5), p99: at(0.99), loadCpuPerRequest: (cpu.user + cpu.system) / Math.max(latencies.length, 1) })}\n`,
  );
}

void main();
