// The broker over every transport: Connect, gRPC and gRPC-Web, over HTTP/1.1
// and h2c on one port, on every database kind.
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/proto/grpc/health/v1/health_pb.js";
import { protocols, startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { failure } from "../support/errors.js";

describe.each(databaseKinds)("transports on %s", (kind) => {
  let t: TestBroker;
  beforeAll(async () => {
    t = await startTestBroker(kind);
  });
  afterAll(() => t.stop());

  it.each(protocols)("answers WhoAmI over %s with the bootstrap admin", async (protocol) => {
    const res = await t.client(PrincipalService, { protocol }).whoAmI({});
    expect(res.principal?.displayName).toBe("Bootstrap admin");
    expect(res.scopes).toContain("broker.admin");
  });

  it.each(protocols)("refuses an anonymous WhoAmI over %s with unauthenticated", async (protocol) => {
    const error = await failure(t.client(PrincipalService, { protocol, key: undefined }).whoAmI({}));
    expect(error).toBeInstanceOf(ConnectError);
    expect(error?.code).toBe(Code.Unauthenticated);
  });

  it.each(protocols)("serves the standard health check anonymously over %s", async (protocol) => {
    const health = t.client(Health, { protocol, key: undefined });
    expect((await health.check({ service: "" })).status).toBe(Status.SERVING);
    expect((await health.check({ service: "aegis.tenant.v1.TenantService" })).status).toBe(Status.SERVING);
    await expect(health.check({ service: "no.such.Service" })).rejects.toMatchObject({ code: Code.NotFound });
  });

  it("streams health over gRPC Watch", async () => {
    const abort = new AbortController();
    const stream = t
      .client(Health, { protocol: "grpc", key: undefined })
      .watch({ service: "" }, { signal: abort.signal });
    for await (const message of stream) {
      expect(message.status).toBe(Status.SERVING);
      break;
    }
    abort.abort();
  });

  it("returns the request id in a response header", async () => {
    let header: Headers | undefined;
    await t.client(PrincipalService).whoAmI({}, { onHeader: (h) => (header = h) });
    expect(header?.get("aegis-request-id")).toMatch(/^req_[0-9a-f-]{36}$/);
  });

  it("serves /healthz and /readyz over plain HTTP", async () => {
    const live = await fetch(`${t.broker.url}/healthz`);
    expect(live.status).toBe(200);
    const ready = await fetch(`${t.broker.url}/readyz`);
    expect(await ready.json()).toEqual({ status: "ready" });
    expect((await fetch(`${t.broker.url}/nothing-here`)).status).toBe(404);
  });

  it("rejects a message larger than the configured limit with resource_exhausted", async () => {
    const big = "x".repeat(t.config.maxMessageBytes + 10);
    const error = await failure(t.client(PrincipalService).getPrincipal({ principalId: big }));
    expect(error?.code).toBe(Code.ResourceExhausted);
  });

  it("refuses a client deadline beyond the configured maximum", async () => {
    const error = await failure(
      t.client(PrincipalService).whoAmI({}, { timeoutMs: t.config.requestTimeoutMs + 60_000 }),
    );
    expect(error?.code).toBe(Code.InvalidArgument);
  });
});
