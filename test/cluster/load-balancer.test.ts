// Three broker processes (`aegis serve`, as an operator runs them) on one
// PostgreSQL database, behind Debian's HAProxy with deploy/haproxy.cfg, and
// every claim of README "Several instances" shown through the balancer:
// tokens, revocations, DPoP replay protection, single-use leases and the
// failed-authentication limit hold across instances, and killing one
// instance loses no acknowledged write.
//
// Time here is wall time across processes (no TestClock reaches a child
// process): waits are deadline polls, never fixed sleeps.
//
// Run by `npm run test:cluster` (needs AEGIS_TEST_DATABASE_URL and haproxy:
// test/support/ensure-haproxy.sh), which .ci/run runs after `npm test`.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { type CallOptions, type Client, Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { exportJWK, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentService, KeyUse } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { ApiKeyService } from "../../gen/proto/aegis/apikey/v1/apikey_pb.js";
import { CredentialService } from "../../gen/proto/aegis/credential/v1/credential_pb.js";
import { LeaseService } from "../../gen/proto/aegis/lease/v1/lease_pb.js";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import { generateCredential } from "../../src/protocol/credential-format.js";
import { sealCredential } from "../../src/sdk/index.js";
import { freePort } from "../support/broker.js";
import { type RunningCli, runAegis } from "../support/cli.js";
import { createPostgresDatabase, dropPostgresDatabase } from "../support/databases.js";
import { createDpopKey, type DpopKey } from "../support/dpop.js";

const servers = ["broker1", "broker2", "broker3"] as const;
/** The failed authentications one client address may make per minute, over all instances together. */
const authFailureLimit = 9;
/** Clients come from their own loopback addresses, which HAProxy forwards and the brokers believe from it alone. */
const client = "127.0.0.2";
const guesser = "127.0.0.3";

const leaseScopes = [
  "credential.lease.create:provider:gcp:app:billing:account:deploy",
  "credential.lease.redeem:provider:gcp:app:billing:account:deploy",
];
const target = { provider: "gcp", app: "billing", account: "deploy" };

interface Instance {
  readonly name: (typeof servers)[number];
  readonly url: string;
  cli: RunningCli;
}

let databaseUrl: string;
let dataDir: string;
let lbUrl: string;
let haproxy: ChildProcess;
let haproxyOutput = "";
const instances: Instance[] = [];
let adminKey: string;

/** Resolves once `check` holds; fails when it has not by `ms` from now. */
async function within(ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const ready = (url: string) =>
  fetch(`${url}/readyz`).then(
    (res) => res.ok,
    () => false,
  );

async function startInstance(name: Instance["name"], port: number, env: Record<string, string>): Promise<Instance> {
  const url = `http://127.0.0.1:${port}`;
  const cli = runAegis(["serve"], { ...env, AEGIS_PORT: String(port), AEGIS_LOG_LEVEL: "warn" });
  const instance = { name, url, cli };
  await within(60_000, async () => {
    if (cli.child.exitCode !== null) throw new Error(`${name} exited: ${cli.output()}`);
    return ready(url);
  });
  return instance;
}

/** A client of `service` through the balancer, from `source`, presenting `key` (Bearer) or a DPoP-bound token. */
function viaBalancer<T extends DescService>(
  service: T,
  auth: { key?: string; dpop?: { token: string; key: DpopKey; proof?: string } } = {},
  source = client,
): Client<T> {
  const authenticate: Interceptor = (next) => async (req) => {
    if (auth.key) req.header.set("authorization", `Bearer ${auth.key}`);
    if (auth.dpop) {
      const { token, key, proof } = auth.dpop;
      req.header.set("authorization", `DPoP ${token}`);
      const url = `${lbUrl}${new URL(req.url).pathname}`;
      req.header.set("dpop", proof ?? (await key.proof({ method: "POST", url, accessToken: token })));
    }
    return next(req);
  };
  return createClient(
    service,
    createConnectTransport({
      baseUrl: lbUrl,
      httpVersion: "1.1",
      interceptors: [authenticate],
      nodeOptions: { localAddress: source, agent: false },
    }),
  );
}

/** Runs a call and says which broker answered (HAProxy's x-aegis-backend) and how. */
async function answered(
  call: (options: CallOptions) => Promise<unknown>,
): Promise<{ server: string | null; code: Code | "ok" }> {
  let server: string | null = null;
  try {
    await call({ onHeader: (headers) => (server = headers.get("x-aegis-backend")) });
    return { server, code: "ok" };
  } catch (error) {
    const refused = ConnectError.from(error);
    return { server: server ?? refused.metadata.get("x-aegis-backend"), code: refused.code };
  }
}

const whoAmI = (auth: Parameters<typeof viaBalancer>[1], source?: string) =>
  answered((options) => viaBalancer(PrincipalService, auth, source).whoAmI({}, options));

beforeAll(async () => {
  databaseUrl = await createPostgresDatabase();
  dataDir = mkdtempSync(path.join(tmpdir(), "aegis-cluster-"));
  const [lbPort, ...ports] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  lbUrl = `http://127.0.0.1:${lbPort}`;
  const env = {
    AEGIS_DATABASE_URL: databaseUrl,
    AEGIS_ROOT_KEY: randomBytes(32).toString("base64url"),
    AEGIS_PUBLIC_URL: lbUrl,
    AEGIS_TRUSTED_PROXIES: "127.0.0.1",
    AEGIS_REVOCATION_POLL_MS: "100",
    AEGIS_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: String(authFailureLimit),
    AEGIS_DATA_DIR: dataDir,
  };
  // The first start migrates and bootstraps; the others then start together.
  const credentialFile = path.join(dataDir, "admin.key");
  instances.push(
    await startInstance("broker1", ports[0] as number, { ...env, AEGIS_BOOTSTRAP_CREDENTIAL_FILE: credentialFile }),
  );
  adminKey = readFileSync(credentialFile, "utf8").trim();
  instances.push(
    ...(await Promise.all([
      startInstance("broker2", ports[1] as number, env),
      startInstance("broker3", ports[2] as number, env),
    ])),
  );
  haproxy = spawn("haproxy", ["-db", "-f", path.resolve("deploy/haproxy.cfg")], {
    env: {
      ...process.env,
      AEGIS_LB_BIND: `127.0.0.1:${lbPort}`,
      ...Object.fromEntries(instances.map((instance, i) => [`AEGIS_BROKER_${i + 1}`, new URL(instance.url).host])),
    },
  });
  haproxy.stdout?.on("data", (d) => (haproxyOutput += d));
  haproxy.stderr?.on("data", (d) => (haproxyOutput += d));
  // Ready once each broker has answered through the balancer.
  const seen = new Set<string | null>();
  await within(30_000, async () => {
    if (haproxy.exitCode !== null) throw new Error(`haproxy exited: ${haproxyOutput}`);
    const res = await fetch(`${lbUrl}/readyz`).catch(() => undefined);
    if (res?.ok) seen.add(res.headers.get("x-aegis-backend"));
    return servers.every((name) => seen.has(name));
  });
}, 180_000);

afterAll(async () => {
  haproxy?.kill("SIGTERM");
  for (const instance of instances) instance.cli.child.kill("SIGTERM");
  await Promise.all(instances.map((instance) => instance.cli.exit));
  if (databaseUrl) await dropPostgresDatabase(databaseUrl);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

/** An agent of the admin's tenant with the lease scopes, an API key, a DPoP key and an encryption key. */
async function startAgent() {
  const agents = viaBalancer(AgentService, { key: adminKey });
  const agentId = (await agents.registerAgent({ displayName: "deploy bot", scopes: leaseScopes })).agent?.id ?? "";
  const { secret: apiKey } = await viaBalancer(ApiKeyService, { key: adminKey }).createApiKey({
    principalId: agentId,
    label: "bot",
  });
  const pair = await generateKeyPair("ECDH-ES+A256KW", { crv: "X25519", extractable: true });
  const jwk = await exportJWK(pair.publicKey);
  const { key } = await agents.addAgentKey({ agentId, use: KeyUse.ENCRYPTION, jwkJson: JSON.stringify(jwk) });
  const dpop = await createDpopKey();
  const mint = async (scopes: string[]) => {
    const url = `${lbUrl}/${TokenService.typeName}/MintToken`;
    const minted = await viaBalancer(TokenService, { key: apiKey }).mintToken(
      { audience: lbUrl, scopes },
      { headers: { dpop: await dpop.proof({ method: "POST", url }) } },
    );
    return minted.accessToken;
  };
  return { agentId, apiKey, dpop, encryption: { kid: key?.id ?? "", jwk }, mint };
}

describe("three brokers behind HAProxy on one PostgreSQL", () => {
  it("accepts a token minted through one instance on every instance", async () => {
    const minted = await answered((options) =>
      viaBalancer(TokenService, { key: adminKey }).mintToken({ audience: lbUrl, scopes: [] }, options),
    );
    expect(minted.code).toBe("ok");
    const { accessToken } = await viaBalancer(TokenService, { key: adminKey }).mintToken({
      audience: lbUrl,
      scopes: [],
    });
    const answers = [];
    for (let i = 0; i < servers.length * 2; i++) answers.push(await whoAmI({ key: accessToken }));
    expect(answers.every((a) => a.code === "ok")).toBe(true);
    expect(new Set(answers.map((a) => a.server))).toEqual(new Set(servers));
  });

  it("refuses a revoked token on every instance within one second", async () => {
    const { accessToken, jti } = await viaBalancer(TokenService, { key: adminKey }).mintToken({
      audience: lbUrl,
      scopes: [],
    });
    for (let i = 0; i < servers.length; i++) expect((await whoAmI({ key: accessToken })).code).toBe("ok");
    await viaBalancer(TokenService, { key: adminKey }).revokeToken({ jti });
    const refusedBy = new Set<string | null>();
    await within(1_000, async () => {
      const answer = await whoAmI({ key: accessToken });
      if (answer.code === Code.Unauthenticated) refusedBy.add(answer.server);
      else refusedBy.clear(); // an instance still accepting it: the others must refuse it again after
      return servers.every((name) => refusedBy.has(name));
    });
  });

  it("refuses a DPoP proof replayed to another instance", async () => {
    const bot = await startAgent();
    const token = await bot.mint([]);
    const proof = await bot.dpop.proof({
      method: "POST",
      url: `${lbUrl}/${PrincipalService.typeName}/WhoAmI`,
      accessToken: token,
    });
    const first = await whoAmI({ dpop: { token, key: bot.dpop, proof } });
    expect(first.code).toBe("ok");
    const replays = [];
    for (let i = 0; i < servers.length; i++) replays.push(await whoAmI({ dpop: { token, key: bot.dpop, proof } }));
    expect(replays.map((r) => r.code)).toEqual([Code.Unauthenticated, Code.Unauthenticated, Code.Unauthenticated]);
    // Round robin sent the replays to the other instances too, not only to the one that saw it first.
    expect(replays.some((r) => r.server !== first.server && r.server !== null)).toBe(true);
    // A fresh proof still works: the token is fine, only the replayed proof is refused.
    expect((await whoAmI({ dpop: { token, key: bot.dpop } })).code).toBe("ok");
  });

  it("redeems a single-use lease exactly once when 30 attempts race through the balancer", async () => {
    const bot = await startAgent();
    await viaBalancer(CredentialService, { key: adminKey }).registerCredential({
      target,
      displayName: "deploy",
      sealedJwe: await sealCredential("s3cret", [{ kid: bot.encryption.kid, jwk: bot.encryption.jwk }]),
    });
    const token = await bot.mint(leaseScopes);
    const { lease } = await viaBalancer(LeaseService, { dpop: { token, key: bot.dpop } }).createLease({ target });
    const attempts = await Promise.all(
      Array.from({ length: 30 }, () =>
        answered((options) =>
          viaBalancer(LeaseService, { dpop: { token, key: bot.dpop } }).redeemLease(
            { leaseId: lease?.id ?? "" },
            options,
          ),
        ),
      ),
    );
    expect(attempts.filter((a) => a.code === "ok")).toHaveLength(1);
    expect(attempts.filter((a) => a.code === Code.FailedPrecondition)).toHaveLength(29);
    expect(new Set(attempts.map((a) => a.server))).toEqual(new Set(servers));
  });

  it("holds one failed-authentication limit per client address across the instances", async () => {
    const badKey = () => generateCredential("apiKey").text;
    const guesses = [];
    for (let i = 0; i < authFailureLimit; i++) guesses.push(await whoAmI({ key: badKey() }, guesser));
    expect(guesses.every((g) => g.code === Code.Unauthenticated)).toBe(true);
    expect(new Set(guesses.map((g) => g.server))).toEqual(new Set(servers)); // 3 each: below the limit on every one alone
    const after = [];
    for (let i = 0; i < servers.length; i++) after.push(await whoAmI({ key: adminKey }, guesser));
    expect(after.map((a) => a.code)).toEqual([Code.ResourceExhausted, Code.ResourceExhausted, Code.ResourceExhausted]);
    expect(new Set(after.map((a) => a.server))).toEqual(new Set(servers));
    // Another address is not locked out with it: the brokers see clients, not the balancer.
    expect((await whoAmI({ key: adminKey }, client)).code).toBe("ok");
  });

  it("loses no acknowledged write when one instance is killed", async () => {
    const agents = viaBalancer(AgentService, { key: adminKey });
    const acknowledged: string[] = [];
    let failed = 0;
    const victim = instances[1] as Instance;
    const create = async (i: number) => {
      try {
        const { agent } = await agents.registerAgent({ displayName: `survivor ${i}`, scopes: [] });
        acknowledged.push(agent?.id ?? "");
      } catch {
        failed++; // in flight on the killed instance: never acknowledged
      }
    };
    let next = 0;
    const worker = async () => {
      while (next < 60) {
        const i = next++;
        if (i === 20) victim.cli.child.kill("SIGKILL");
        await create(i);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    expect(await victim.cli.exit).toBe(null); // killed, not exited
    expect(acknowledged.length + failed).toBe(60);
    expect(acknowledged.length).toBeGreaterThanOrEqual(50);
    const missing = [];
    for (const agentId of acknowledged) {
      const found = await answered((options) => agents.getAgent({ agentId }, options));
      if (found.code !== "ok") missing.push(agentId);
      expect(found.server).not.toBe(victim.name);
    }
    expect(missing).toEqual([]);
  });
});
