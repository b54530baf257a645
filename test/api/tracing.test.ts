// OpenTelemetry tracing, seen by a real OTLP/HTTP receiver (a plain node
// server taking POST /v1/traces as JSON, what a collector does): one server
// span per RPC over Connect and gRPC and per HTTP route, named and described
// by the OTel conventions, refusals failed with their code, the caller's
// `traceparent` continued, child spans for the audit group commit, token
// signing and audited transactions in the same trace, the ids on the log
// line, no secret anywhere in what was exported; and with OTEL_* unset (or
// the SDK disabled) no tracer, no export. Spans are read after the broker
// stopped: shutdown flushes the exporter, so nothing here waits on a timer.
import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GrantService } from "../../gen/proto/aegis/grant/v1/grant_pb.js";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { ConfigError, loadConfig } from "../../src/core/config.js";
import { generateCredential } from "../../src/protocol/credential-format.js";
import { mintDpopToken } from "../support/agents.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { createDpopKey } from "../support/dpop.js";
import { type Actor, createActor } from "../support/fixtures.js";

interface OtlpValue {
  stringValue?: string;
  intValue?: number | string;
  boolValue?: boolean;
  doubleValue?: number;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  traceState?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: OtlpValue }[];
  status: { code?: number; message?: string };
  events?: { name: string }[];
}
interface ExportedSpan extends OtlpSpan {
  attrs: Record<string, string | number | boolean | undefined>;
  resource: Record<string, string | number | boolean | undefined>;
}

const SERVER = 2;
const ERROR = 2;

function plain(value: OtlpValue): string | number | boolean | undefined {
  if (value.intValue !== undefined) return Number(value.intValue);
  return value.stringValue ?? value.boolValue ?? value.doubleValue;
}

function record(attributes: { key: string; value: OtlpValue }[] = []) {
  return Object.fromEntries(attributes.map((a) => [a.key, plain(a.value)]));
}

/** An OTLP/HTTP receiver on an ephemeral port: every body it was sent, and the spans in them. */
async function startReceiver() {
  const bodies: string[] = [];
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      paths.push(`${req.method} ${req.url} ${req.headers["content-type"]}`);
      bodies.push(body);
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    bodies,
    paths,
    spans(): ExportedSpan[] {
      return bodies.flatMap((body) =>
        (JSON.parse(body).resourceSpans ?? []).flatMap(
          (rs: { resource?: { attributes: [] }; scopeSpans: { spans: OtlpSpan[] }[] }) =>
            rs.scopeSpans.flatMap((ss) =>
              ss.spans.map((span) => ({
                ...span,
                attrs: record(span.attributes),
                resource: record(rs.resource?.attributes),
              })),
            ),
        ),
      );
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const hex = (bytes: number) => randomBytes(bytes).toString("hex");

describe.each(databaseKinds)("tracing to an OTLP/HTTP receiver, on %s", (kind) => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let t: TestBroker;
  let agent: Actor;
  let admin: Actor;
  const stranger = generateCredential("apiKey").text;
  const callerTrace = { traceId: hex(16), spanId: hex(8), httpTraceId: hex(16), httpSpanId: hex(8) };
  const secrets: string[] = [];
  let spans: ExportedSpan[];

  beforeAll(async () => {
    receiver = await startReceiver();
    t = await startTestBroker(kind, {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment.name=test,team=identity%20platform",
    });
    agent = await createActor(t, { kind: "agent" });
    admin = await createActor(t, { tenantId: agent.tenantId, scopes: ["grant.create", "principal.read"] });
    const basic = `Basic ${Buffer.from(`${agent.principalId}:${agent.key}`).toString("base64")}`;
    secrets.push(agent.key, admin.key, t.adminKey, stranger, basic, t.config.rootKey ?? "");

    // Connect (the unary fast path), continuing the caller's trace.
    const minted = await fetch(`${t.broker.url}/aegis.token.v1.TokenService/MintToken`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${agent.key}`,
        traceparent: `00-${callerTrace.traceId}-${callerTrace.spanId}-01`,
        tracestate: "caller=7",
      },
      body: JSON.stringify({ audience: t.broker.url, scopes: [] }),
    });
    expect(minted.status).toBe(200);
    secrets.push(((await minted.json()) as { accessToken: string }).accessToken);
    // A DPoP-bound mint: the proof's check (a signature, a replay claim) is a span of its own.
    secrets.push(await mintDpopToken(t, agent.key, await createDpopKey(), []));
    // gRPC: an audited transaction.
    await t
      .client(GrantService, { key: admin.key, protocol: "grpc" })
      .createGrant({ principalId: agent.principalId, scope: "principal.read" });
    // Refused: a stranger's key, and a call the caller holds no grant for (the
    // grant above was for principal.read; principal.list it lacks).
    await expect(t.client(PrincipalService, { key: stranger }).whoAmI({})).rejects.toThrow();
    await expect(t.client(PrincipalService, { key: agent.key, protocol: "grpc" }).listPrincipals({})).rejects.toThrow();
    // The OAuth token endpoint, continuing another trace; then a refused one.
    const token = await fetch(`${t.broker.url}/oauth/token`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: basic,
        traceparent: `00-${callerTrace.httpTraceId}-${callerTrace.httpSpanId}-01`,
      },
      body: new URLSearchParams({ grant_type: "client_credentials" }),
    });
    expect(token.status).toBe(200);
    secrets.push(((await token.json()) as { access_token: string }).access_token);
    const wrong = `Basic ${Buffer.from(`${agent.principalId}:${stranger}`).toString("base64")}`;
    secrets.push(wrong);
    const refused = await fetch(`${t.broker.url}/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: wrong },
      body: new URLSearchParams({ grant_type: "client_credentials" }),
    });
    expect(refused.status).toBe(401);

    await t.stop(); // flushes the exporter
    spans = receiver.spans();
  }, 180_000);
  afterAll(() => receiver.close());

  const server = (name: string) => spans.filter((s) => s.kind === SERVER && s.name === name);
  const mintOf = (traceId: string) =>
    server("aegis.token.v1.TokenService/MintToken").find((s) => s.traceId === traceId) as ExportedSpan;
  const childrenOf = (parent: ExportedSpan) => spans.filter((s) => s.parentSpanId === parent.spanId);

  it("exports OTLP/HTTP JSON to the endpoint's /v1/traces, with the service's resource", () => {
    expect(receiver.paths.length).toBeGreaterThan(0);
    for (const path of receiver.paths) expect(path).toBe("POST /v1/traces application/json");
    expect(spans[0]?.resource).toMatchObject({
      "service.name": "aegis-broker",
      "deployment.environment.name": "test",
      team: "identity platform",
      "telemetry.sdk.language": "nodejs",
    });
  });

  it("makes one server span per Connect call, a child of the caller's traceparent, with its tracestate", () => {
    const mints = server("aegis.token.v1.TokenService/MintToken");
    expect(mints).toHaveLength(2);
    const mint = mintOf(callerTrace.traceId);
    expect(mint).toMatchObject({
      traceId: callerTrace.traceId,
      parentSpanId: callerTrace.spanId,
      traceState: "caller=7",
      status: {},
    });
    expect(mint?.status.code ?? 0).not.toBe(ERROR);
    expect(mint?.attrs).toMatchObject({
      "rpc.system.name": "connectrpc",
      "rpc.method": "aegis.token.v1.TokenService/MintToken",
      "rpc.status_code": "OK",
      "aegis.procedure": "aegis.token.v1.TokenService/MintToken",
      "aegis.action": "token.mint",
      "aegis.tenant.id": agent.tenantId,
      "aegis.principal.kind": "agent",
    });
  });

  it("gives a mint child spans for signing, its audit group commit and its DPoP check, in its trace", () => {
    const children = childrenOf(mintOf(callerTrace.traceId));
    const sign = children.find((s) => s.name === "token sign");
    const audit = children.find((s) => s.name === "audit group commit");
    expect(sign?.traceId).toBe(callerTrace.traceId);
    expect(sign?.attrs["aegis.key.id"]).toEqual(expect.any(String));
    expect(audit?.traceId).toBe(callerTrace.traceId);
    expect(audit?.attrs).toMatchObject({ "aegis.queue": "audit", "db.system.name": "postgresql" });
    expect(audit?.attrs["db.operation.batch.size"]).toBeGreaterThanOrEqual(1);
    expect(audit?.events?.map((e) => e.name)).toEqual(["batch write"]);
    expect(children.map((s) => s.name)).not.toContain("dpop check");
    const bound = server("aegis.token.v1.TokenService/MintToken").find((s) => s.traceId !== callerTrace.traceId);
    expect(childrenOf(bound as ExportedSpan).map((s) => s.name)).toEqual(
      expect.arrayContaining(["dpop check", "token sign", "audit group commit"]),
    );
  });

  it("makes a gRPC call's span with its target, and a child span for its audited transaction", () => {
    const [grant] = server("aegis.grant.v1.GrantService/CreateGrant");
    expect(grant?.attrs).toMatchObject({
      "rpc.system.name": "grpc",
      "rpc.status_code": "OK",
      "aegis.action": "grant.create",
      "aegis.target": agent.principalId,
      "aegis.tenant.id": agent.tenantId,
      "aegis.principal.kind": "person",
    });
    expect(grant?.parentSpanId ?? "").toBe(""); // no traceparent sent: a new trace
    const transaction = childrenOf(grant as ExportedSpan).find((s) => s.name === "db transaction");
    expect(transaction?.traceId).toBe(grant?.traceId);
  });

  it("fails a refused call's span with its code and reason", () => {
    const [stranger] = server("aegis.principal.v1.PrincipalService/WhoAmI");
    expect(stranger?.status.code).toBe(ERROR);
    expect(stranger?.attrs).toMatchObject({ "rpc.status_code": "UNAUTHENTICATED", "error.type": "UNAUTHENTICATED" });
    expect(stranger?.attrs["aegis.tenant.id"]).toBeUndefined();
    const [denied] = server("aegis.principal.v1.PrincipalService/ListPrincipals");
    expect(denied?.status).toMatchObject({ code: ERROR, message: expect.stringMatching(/^[A-Z_]+$/) });
    expect(denied?.attrs).toMatchObject({
      "rpc.system.name": "grpc",
      "rpc.status_code": "PERMISSION_DENIED",
      "aegis.action": "principal.list",
      "aegis.tenant.id": agent.tenantId,
      "aegis.principal.kind": "agent",
    });
    expect(denied?.attrs["aegis.reason"]).toBe(denied?.status.message);
  });

  it("makes one server span per HTTP request by the HTTP conventions, with the RPC it stands for", () => {
    const routes = server("POST /oauth/token");
    expect(routes).toHaveLength(2);
    const [served, refused] = [...routes].sort(
      (a, b) => Number(a.attrs["http.response.status_code"]) - Number(b.attrs["http.response.status_code"]),
    );
    expect(served).toMatchObject({ traceId: callerTrace.httpTraceId, parentSpanId: callerTrace.httpSpanId });
    expect(served?.attrs).toMatchObject({
      "http.request.method": "POST",
      "http.route": "/oauth/token",
      "http.response.status_code": 200,
      "aegis.procedure": "aegis.token.v1.TokenService/MintToken",
      "aegis.action": "token.mint",
      "aegis.tenant.id": agent.tenantId,
      "aegis.principal.kind": "agent",
    });
    expect(childrenOf(served as ExportedSpan).map((s) => s.name)).toEqual(
      expect.arrayContaining(["token sign", "audit group commit"]),
    );
    expect(refused?.status.code).toBe(ERROR);
    expect(refused?.attrs).toMatchObject({ "http.response.status_code": 401, "error.type": "401" });
  });

  it("puts the span's ids on the call's log line", () => {
    const mint = mintOf(callerTrace.traceId);
    const [route] = server("POST /oauth/token");
    const lines = t.logs.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toContainEqual(
      expect.objectContaining({ msg: "rpc", trace_id: callerTrace.traceId, span_id: mint?.spanId }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({ msg: "http", trace_id: route?.traceId, span_id: route?.spanId }),
    );
  });

  it("exports no credential used on the calls, nor any part of one", () => {
    expect(spans.length).toBeGreaterThan(8);
    const exported = receiver.bodies.join("\n");
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThan(20);
      expect(exported).not.toContain(secret);
      // The secret part of an API key, the signature of a token, the base64 of a Basic header.
      expect(exported).not.toContain(secret.slice(-30));
    }
    for (const span of spans) {
      for (const value of Object.values(span.attrs))
        expect(String(value)).not.toMatch(/aegis_[a-z]{2}_|^Bearer |^Basic /);
    }
  });
});

describe("tracing switched off", () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  beforeAll(async () => {
    receiver = await startReceiver();
  });
  afterAll(() => receiver.close());

  it.each([
    ["OTEL_* unset", {}],
    ["OTEL_SDK_DISABLED=true beside an endpoint", { OTEL_SDK_DISABLED: "true", OTEL_EXPORTER_OTLP_ENDPOINT: "" }],
  ])(
    "with %s, creates no tracer and exports nothing",
    async (_, env: Record<string, string>) => {
      const given = { ...env };
      if ("OTEL_EXPORTER_OTLP_ENDPOINT" in given) given.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
      const t = await startTestBroker("pglite", given);
      expect(t.config.tracing).toBeUndefined();
      await t.client(PrincipalService).whoAmI({});
      await fetch(`${t.broker.url}/oauth/token`, { method: "POST" });
      await t.stop();
      expect(receiver.bodies).toEqual([]);
      const lines = t.logs.map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(lines.filter((l) => l.msg === "rpc" || l.msg === "http").length).toBeGreaterThanOrEqual(2);
      expect(lines.filter((l) => "trace_id" in l)).toEqual([]);
    },
    120_000,
  );
});

describe("tracing configuration (OTEL_*)", () => {
  const config = (env: Record<string, string>) => loadConfig({ AEGIS_ROOT_KEY: "", ...env }).tracing;

  it("is off unless an endpoint or OTEL_TRACES_EXPORTER=otlp is given", () => {
    expect(config({})).toBeUndefined();
    expect(config({ OTEL_SERVICE_NAME: "x", OTEL_TRACES_SAMPLER: "always_on" })).toBeUndefined();
    expect(config({ OTEL_TRACES_EXPORTER: "otlp" })?.endpoint).toBe("http://localhost:4318/v1/traces");
    expect(config({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" })?.endpoint).toBe(
      "http://collector:4318/v1/traces",
    );
    expect(config({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://collector:4318/custom" })?.endpoint).toBe(
      "http://collector:4318/custom",
    );
    expect(config({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_SDK_DISABLED: "TRUE" })).toBeUndefined();
    expect(config({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_TRACES_EXPORTER: "none" })).toBeUndefined();
  });

  it("reads the service name, resource attributes, sampler and batch settings as the SDK specifies", () => {
    const on = { OTEL_TRACES_EXPORTER: "otlp" };
    expect(config(on)).toMatchObject({
      serviceName: "aegis-broker",
      sampler: "parentbased_always_on",
      samplerRatio: 1,
    });
    expect(config({ ...on, OTEL_RESOURCE_ATTRIBUTES: "service.name=from-attributes" })?.serviceName).toBe(
      "from-attributes",
    );
    expect(
      config({ ...on, OTEL_RESOURCE_ATTRIBUTES: "service.name=from-attributes", OTEL_SERVICE_NAME: "named" })
        ?.serviceName,
    ).toBe("named");
    expect(
      config({ ...on, OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.25" }),
    ).toMatchObject({ sampler: "parentbased_traceidratio", samplerRatio: 0.25 });
    expect(config({ ...on, OTEL_BSP_SCHEDULE_DELAY: "200" })?.batch.scheduleDelayMs).toBe(200);
    expect(config({ ...on, OTEL_EXPORTER_OTLP_HEADERS: "x-api-key=abc%3D" })?.headers).toEqual({ "x-api-key": "abc=" });
  });

  it.each([
    [{ OTEL_TRACES_EXPORTER: "zipkin" }, "OTEL_TRACES_EXPORTER"],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" }, "OTEL_EXPORTER_OTLP_ENDPOINT"],
    [{ OTEL_TRACES_EXPORTER: "otlp", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }, "OTEL_EXPORTER_OTLP_PROTOCOL"],
    [{ OTEL_TRACES_EXPORTER: "otlp", OTEL_TRACES_SAMPLER: "jaeger_remote" }, "OTEL_TRACES_SAMPLER"],
    [
      { OTEL_TRACES_EXPORTER: "otlp", OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "2" },
      "OTEL_TRACES_SAMPLER_ARG",
    ],
    [{ OTEL_TRACES_EXPORTER: "otlp", OTEL_BSP_SCHEDULE_DELAY: "soon" }, "OTEL_BSP_SCHEDULE_DELAY"],
    [{ OTEL_TRACES_EXPORTER: "otlp", OTEL_RESOURCE_ATTRIBUTES: "novalue" }, "OTEL_RESOURCE_ATTRIBUTES"],
    [{ OTEL_SDK_DISABLED: "maybe" }, "OTEL_SDK_DISABLED"],
  ])("refuses %o, naming %s", (env, variable) => {
    expect(() => config(env)).toThrow(ConfigError);
    expect(() => config(env)).toThrow(new RegExp(`^${variable}: `));
  });

  it("never repeats a header value it refuses (it may be the collector's API key)", () => {
    expect(() => config({ OTEL_TRACES_EXPORTER: "otlp", OTEL_EXPORTER_OTLP_HEADERS: "x-api-key=%E0%A4%A" })).toThrow(
      /^OTEL_EXPORTER_OTLP_HEADERS: "x-api-key…" is not key=value$/,
    );
  });
});
