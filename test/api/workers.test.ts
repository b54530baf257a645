// `aegis serve` with AEGIS_WORKERS=2 on the embedded database, as an
// operator runs it: two broker processes on one port, the primary serving
// the data directory's PGlite to both. What one worker decides, the other
// must honour: revocations, single-use leases, the audit chain.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { AgentService } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { ApiKeyService } from "../../gen/proto/aegis/apikey/v1/apikey_pb.js";
import { AuditService } from "../../gen/proto/aegis/audit/v1/audit_pb.js";
import { CredentialService } from "../../gen/proto/aegis/credential/v1/credential_pb.js";
import { LeaseService } from "../../gen/proto/aegis/lease/v1/lease_pb.js";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import { sealCredential } from "../../src/sdk/index.js";
import { registerEncryptionKey, startAgent } from "../support/agents.js";
import type { TestBroker } from "../support/broker.js";
import { type RunningCli, runAegis, waitFor } from "../support/cli.js";
import { failure } from "../support/errors.js";
import { promtool, sample } from "../support/prometheus.js";

function serve(dataDir: string): RunningCli {
  return runAegis(
    ["serve"],
    {
      AEGIS_WORKERS: "2",
      AEGIS_DATA_DIR: dataDir,
      AEGIS_PORT: "0",
      AEGIS_BOOTSTRAP_CREDENTIAL_FILE: path.join(dataDir, "admin.key"),
      // The revocation test polls with a revoked token until every worker
      // refuses it; each refusal is a failed authentication, which must not
      // trip the per-address limit that every way in shares.
      AEGIS_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: "100000",
    },
    { detached: true }, // its own process group, so a failed test can end every process of it
  );
}

/** Log lines of one kind, parsed. */
function lines(served: RunningCli, msg: string): Record<string, unknown>[] {
  return served
    .output()
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.msg === msg);
}

/** The pids of the workers now serving, from the log: those that said they listen, less those reported dead. */
function workerPids(served: RunningCli): number[] {
  const dead = new Set(lines(served, "a broker worker exited; starting another").map((l) => Number(l.pid)));
  return lines(served, "aegis broker listening")
    .map((l) => Number(l.pid))
    .filter((pid) => !dead.has(pid));
}

describe("aegis serve with AEGIS_WORKERS=2 on the embedded database", () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), "aegis-workers-"));
  let served: RunningCli;
  let url = "";
  let adminKey = "";
  /** Enough of a TestBroker for the agent fixtures, against the child process. */
  let t: TestBroker;

  beforeAll(async () => {
    served = serve(dataDir);
    await waitFor(() => served.output().includes("aegis broker workers listening"), 45_000);
    url = String(lines(served, "aegis broker workers listening")[0]?.url);
    adminKey = readFileSync(path.join(dataDir, "admin.key"), "utf8").trim();
    const client = <T extends DescService>(service: T, options: { key?: string } = {}) =>
      createClient(
        service,
        createConnectTransport({
          baseUrl: url,
          httpVersion: "1.1",
          // A connection per call: the primary deals connections to the
          // workers in turn, so calls reach both (pooled keep-alive
          // connections may all lead to one).
          nodeOptions: { agent: false },
          interceptors: [
            (next) => (req) => {
              req.header.set("authorization", `Bearer ${options.key ?? adminKey}`);
              return next(req);
            },
          ],
        }),
      );
    t = { broker: { url }, config: { publicUrlGiven: false, publicUrl: url }, client } as unknown as TestBroker;
  }, 60_000);

  afterAll(() => {
    // After a failure: end the primary and its workers too, not only tsx's wrapper process.
    if (served.child.exitCode === null) process.kill(-(served.child.pid as number), "SIGKILL");
  });

  it("bootstraps once, and both workers answer calls", async () => {
    expect(served.output().match(/Bootstrap admin credential written/g)).toHaveLength(1);
    expect(lines(served, "aegis broker listening").map((l) => l.worker)).toEqual(expect.arrayContaining([1, 2]));
    await Promise.all(Array.from({ length: 24 }, () => t.client(PrincipalService).whoAmI({})));
    const answered = new Set(
      lines(served, "rpc")
        .filter((l) => l.procedure === "aegis.principal.v1.PrincipalService/WhoAmI")
        .map((l) => l.worker),
    );
    expect(answered).toEqual(new Set([1, 2]));
  });

  it("answers a scrape with the sum over every worker, whichever worker it reaches", async () => {
    const scrape = async () => {
      const response = await fetch(`${url}/metrics`, {
        headers: { authorization: `Bearer ${adminKey}`, connection: "close" },
      });
      expect(response.status).toBe(200);
      return response.text();
    };
    const whoAmI = { service: "aegis.principal.v1.PrincipalService", method: "WhoAmI", code: "OK" };
    const before = sample(await scrape(), "aegis_rpc_handled_total", whoAmI);
    const logged = lines(served, "rpc").length;
    await Promise.all(Array.from({ length: 24 }, () => t.client(PrincipalService).whoAmI({})));
    const answered = new Set(
      lines(served, "rpc")
        .slice(logged)
        .filter((l) => l.procedure === "aegis.principal.v1.PrincipalService/WhoAmI")
        .map((l) => l.worker),
    );
    expect(answered).toEqual(new Set([1, 2]));
    // Each of several scrapes (dealt to either worker) counts all 24.
    for (let i = 0; i < 4; i++) {
      const text = await scrape();
      expect(sample(text, "aegis_rpc_handled_total", whoAmI) - before).toBe(24);
      if (i === 0) expect(await promtool(text)).toMatchObject({ code: 0 });
    }
  });

  it("refuses a revoked token on every worker within a second", async () => {
    const agents = t.client(AgentService);
    const { agent } = await agents.registerAgent({ displayName: "revoked soon", scopes: [] });
    const { secret } = await t.client(ApiKeyService).createApiKey({ principalId: agent?.id ?? "" });
    const { accessToken, jti } = await t.client(TokenService, { key: secret }).mintToken({ audience: url, scopes: [] });
    const asToken = () => t.client(PrincipalService, { key: accessToken }).whoAmI({});
    await Promise.all(Array.from({ length: 8 }, asToken));
    await t.client(TokenService, { key: secret }).revokeToken({ jti });
    const refusedBy = () =>
      new Set(
        lines(served, "rpc")
          .filter((l) => l.procedure === "aegis.principal.v1.PrincipalService/WhoAmI" && l.code === "Unauthenticated")
          .map((l) => l.worker),
      );
    // The worker that did not revoke it learns of it from the revocation feed it polls.
    await vi.waitFor(
      async () => {
        const results = await Promise.all(Array.from({ length: 16 }, () => failure(asToken())));
        expect(results.map((r) => r?.code)).toEqual(Array(16).fill(Code.Unauthenticated));
        // Both workers refused it, not only the one that revoked it.
        expect(refusedBy()).toEqual(new Set([1, 2]));
      },
      { timeout: 1_000, interval: 50 },
    );
  });

  it("redeems a single-use lease exactly once under 100 concurrent attempts across the workers", async () => {
    const target = { provider: "gcp", app: "billing-workers", account: "deploy-bot" };
    const selector = "provider:gcp:app:billing-workers:account:deploy-bot";
    const scopes = [`credential.lease.create:${selector}`, `credential.lease.redeem:${selector}`];
    const admin = await t.client(PrincipalService).whoAmI({});
    const agent = await startAgent(t, adminKey, scopes);
    const mine = await registerEncryptionKey(t, adminKey, admin.principal?.id ?? "", "P-256");
    await t.client(CredentialService).registerCredential({
      target,
      displayName: "deploy key",
      sealedJwe: await sealCredential("sk-live-workers", [
        { kid: mine.kid, jwk: mine.publicJwk },
        { kid: agent.encryption.kid, jwk: agent.encryption.publicJwk },
      ]),
    });
    // A connection per call, so the attempts reach both workers (each waits
    // for its DPoP proof, and pooled connections let them trickle down one).
    const leases = agent.client(LeaseService, await agent.token(scopes), { nodeOptions: { agent: false } });
    const { lease } = await leases.createLease({ target, maxUses: 1 });
    const results = await Promise.all(
      Array.from({ length: 100 }, () => failure(leases.redeemLease({ leaseId: lease?.id ?? "" }))),
    );
    expect(results.filter((r) => r === undefined)).toHaveLength(1);
    expect(results.filter((r) => r?.code === Code.FailedPrecondition)).toHaveLength(99);
    const redeemedBy = new Set(
      lines(served, "rpc")
        .filter((l) => l.procedure === "aegis.lease.v1.LeaseService/RedeemLease")
        .map((l) => l.worker),
    );
    expect(redeemedBy).toEqual(new Set([1, 2]));
    const { events } = await t.client(AuditService).queryAuditEvents({
      filter: { action: "credential.lease.redeem" },
      pageSize: 1000,
    });
    expect(events.filter((e) => e.target === lease?.id)).toHaveLength(100);
  });

  it("replaces a worker that dies and keeps serving", async () => {
    const [victim, survivor] = workerPids(served);
    process.kill(victim as number, "SIGKILL");
    await waitFor(() => served.output().includes("a broker worker exited; starting another"));
    await waitFor(() => lines(served, "aegis broker listening").length >= 3);
    await Promise.all(Array.from({ length: 8 }, () => t.client(PrincipalService).whoAmI({})));
    const now = workerPids(served);
    expect(now).toHaveLength(2);
    expect(now).toContain(survivor);
    expect(now).not.toContain(victim);
  });

  it("stops cleanly on SIGTERM and starts again on the same data, its audit chain intact", async () => {
    served.child.kill("SIGTERM");
    expect(await served.exit).toBe(0);
    expect(served.output()).toContain("shut down");

    served = serve(dataDir);
    await waitFor(() => served.output().includes("aegis broker workers listening"), 45_000);
    url = String(lines(served, "aegis broker workers listening")[0]?.url);
    (t as unknown as { broker: { url: string } }).broker.url = url;
    expect(served.output()).not.toContain("Bootstrap admin credential");
    const verdict = await t.client(AuditService).verifyAuditChain({});
    expect(verdict.intact).toBe(true);
    expect(verdict.eventsChecked).toBeGreaterThan(100n);
    served.child.kill("SIGTERM");
    expect(await served.exit).toBe(0);
  }, 60_000);
});
