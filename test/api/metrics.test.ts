// GET /metrics: Prometheus exposition that promtool accepts, counters that
// move for real RPCs and HTTP routes with their codes, labels that never
// carry a secret or an id, and who may read it: the elevated grant on the
// main port, anyone on AEGIS_METRICS_ADDRESS (and then nothing on the main port).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { generateCredential } from "../../src/protocol/credential-format.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { createActor } from "../support/fixtures.js";
import { labelsOf, promtool, sample } from "../support/prometheus.js";

describe.each(databaseKinds)("GET /metrics on the main port, on %s", (kind) => {
  let t: TestBroker;
  beforeAll(async () => {
    t = await startTestBroker(kind);
  });
  afterAll(() => t.stop());

  const scrape = async (key = t.adminKey) => {
    const response = await fetch(`${t.broker.url}/metrics`, { headers: { authorization: `Bearer ${key}` } });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    return response.text();
  };
  const rpc = (method: string, key: string) =>
    fetch(`${t.broker.url}/aegis.principal.v1.PrincipalService/${method}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: "{}",
    });

  it("passes promtool check metrics", async () => {
    const checked = await promtool(await scrape());
    expect(checked.output).toBe("");
    expect(checked.code).toBe(0);
  });

  it("counts a real RPC by service, method and code, and times it", async () => {
    const labels = { service: "aegis.principal.v1.PrincipalService", method: "WhoAmI" };
    const before = await scrape();
    await t.client(PrincipalService).whoAmI({});
    expect((await rpc("WhoAmI", generateCredential("apiKey").text)).status).toBe(401);
    const after = await scrape();
    const count = (text: string, code: string) => sample(text, "aegis_rpc_handled_total", { ...labels, code });
    expect(count(after, "OK") - count(before, "OK")).toBe(1);
    expect(count(after, "Unauthenticated") - count(before, "Unauthenticated")).toBe(1);
    const timed = (text: string) => sample(text, "aegis_rpc_duration_seconds_count", { ...labels, code: "OK" });
    expect(timed(after) - timed(before)).toBe(1);
    expect(sample(after, "aegis_rpc_in_flight", labels)).toBe(0);
  });

  it("counts a real HTTP route by its path and status, and any other path as unmatched", async () => {
    const before = await scrape();
    const token = await fetch(`${t.broker.url}/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "",
    });
    expect(token.status).toBe(400);
    expect((await fetch(`${t.broker.url}/no/such/page/${generateCredential("apiKey").text}`)).status).toBe(404);
    const after = await scrape();
    const count = (text: string, route: string, status: string) =>
      sample(text, "aegis_http_requests_total", { route, method: "POST", status }) +
      (status === "404" ? sample(text, "aegis_http_requests_total", { route, method: "GET", status }) : 0);
    expect(count(after, "/oauth/token", "400") - count(before, "/oauth/token", "400")).toBe(1);
    expect(count(after, "unmatched", "404") - count(before, "unmatched", "404")).toBe(1);
    const timed = (text: string) =>
      sample(text, "aegis_http_request_duration_seconds_count", { route: "/oauth/token", status: "400" });
    expect(timed(after) - timed(before)).toBe(1);
  });

  it("reports audit batches, the revocation feed, rate-limit refusals and the process", async () => {
    const text = await scrape();
    // The refused WhoAmI above was audited through the group commit.
    expect(sample(text, "aegis_group_commit_batch_size_count", { queue: "audit" })).toBeGreaterThan(0);
    expect(sample(text, "aegis_group_commit_wait_seconds_count", { queue: "audit" })).toBeGreaterThan(0);
    expect(text).toMatch(/^aegis_revocation_feed_lag_seconds \d/m);
    expect(text).toContain("# TYPE aegis_rate_limit_refusals_total counter");
    expect(text).toMatch(/^process_cpu_seconds_total \d/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds \d/m);
    if (kind === "postgres") expect(text).toMatch(/^aegis_db_pool_connections\{state="idle"\} \d/m);
  });

  it("puts no secret, id or client-chosen text in a label", async () => {
    const person = await createActor(t, { scopes: ["principal.read"] });
    await t.client(PrincipalService, { key: person.key }).whoAmI({});
    await fetch(`${t.broker.url}/${person.principalId}?token=${person.key}`, { method: "BREW" });
    const text = await scrape();
    for (const secret of [t.adminKey, person.key, person.principalId, person.tenantId, person.keyId, "req_", "BREW"]) {
      expect(text).not.toContain(secret);
    }
    // Every label value comes from a small fixed set.
    const allowed: Record<string, RegExp> = {
      service: /^(aegis\.[a-z]+\.v1\.[A-Za-z]+Service|grpc\.health\.v1\.Health)$/,
      method: /^([A-Z][A-Za-z]+|GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|other)$/,
      code: /^[A-Z][A-Za-z]+$/,
      route: /^(\/[a-z0-9._/-]*|unmatched)$/,
      status: /^\d{3}$/,
      queue: /^audit$/,
      limit: /^[a-z_]+$/,
      state: /^(idle|busy)$/,
    };
    for (const line of text.split("\n")) {
      if (line.startsWith("#") || !line.startsWith("aegis_")) continue;
      for (const [key, value] of Object.entries(labelsOf(/\{(.*)\}/.exec(line)?.[1] ?? ""))) {
        if (key === "le") continue;
        expect(allowed[key], `label ${key} in ${line}`).toBeDefined();
        expect(value, `label ${key} in ${line}`).toMatch(allowed[key] as RegExp);
      }
    }
  });

  it("wants the elevated grant: 401 without a credential, 403 without the grant, both audited", async () => {
    const anonymous = await fetch(`${t.broker.url}/metrics`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("www-authenticate")).toMatch(/^Bearer /);
    const person = await createActor(t, { scopes: ["principal.read"] });
    const member = await fetch(`${t.broker.url}/metrics`, { headers: { authorization: `Bearer ${person.key}` } });
    expect(member.status).toBe(403);
    expect(await member.text()).not.toContain("aegis_");
    const denied = await t.db.database.prisma.auditEvent.findMany({
      where: { action: "broker.metrics.read", outcome: "denied" },
    });
    expect(denied.map((e) => e.actorId)).toContain(person.principalId);
  });
});

describe("GET /metrics on AEGIS_METRICS_ADDRESS", () => {
  let t: TestBroker;
  beforeAll(async () => {
    t = await startTestBroker("pglite", {
      AEGIS_METRICS_ADDRESS: "127.0.0.1:0",
      AEGIS_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: "1",
    });
  });
  afterAll(() => t.stop());

  it("serves metrics there without authentication, and not on the main port", async () => {
    expect(t.broker.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(t.broker.metricsUrl).not.toBe(t.broker.url);
    const response = await fetch(`${t.broker.metricsUrl}/metrics`);
    expect(response.status).toBe(200);
    expect((await promtool(await response.text())).code).toBe(0);
    const main = await fetch(`${t.broker.url}/metrics`, { headers: { authorization: `Bearer ${t.adminKey}` } });
    expect(main.status).toBe(404);
    expect((await fetch(`${t.broker.metricsUrl}/healthz`)).status).toBe(404);
  });

  it("counts refusals of a rate limit by its name", async () => {
    const guess = () =>
      fetch(`${t.broker.url}/aegis.principal.v1.PrincipalService/WhoAmI`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${generateCredential("apiKey").text}` },
        body: "{}",
      });
    expect((await guess()).status).toBe(401);
    expect((await guess()).status).toBe(429);
    const text = await (await fetch(`${t.broker.metricsUrl}/metrics`)).text();
    expect(sample(text, "aegis_rate_limit_refusals_total", { limit: "auth_failures" })).toBeGreaterThan(0);
  });
});
