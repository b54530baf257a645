// A client's own request id (X-Request-Id) is kept when it is well-formed
// (1-64 of [A-Za-z0-9._-]): echoed back, in the log line and the audit event,
// on RPCs and HTTP routes alike. Anything else gets an id of the broker's.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateCredential } from "../../src/protocol/credential-format.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";

describe("request ids", () => {
  let t: TestBroker;
  beforeAll(async () => {
    t = await startTestBroker("pglite");
  });
  afterAll(() => t.stop());

  const lineOf = (requestId: string, msg: string) =>
    t.logs
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((l) => l.requestId === requestId && l.msg === msg);
  const rpc = (requestId: string, key = t.adminKey) =>
    fetch(`${t.broker.url}/aegis.principal.v1.PrincipalService/WhoAmI`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}`, "x-request-id": requestId },
      body: "{}",
    });

  it("echoes a well-formed id on an RPC, logs and audits the call under it", async () => {
    const ok = await rpc("trace-42.a_b");
    expect(ok.status).toBe(200);
    expect(ok.headers.get("x-request-id")).toBe("trace-42.a_b");
    expect(ok.headers.get("aegis-request-id")).toBe("trace-42.a_b");
    await expect.poll(() => lineOf("trace-42.a_b", "rpc")).toMatchObject({ code: "OK" });

    const refused = await rpc("trace-43", generateCredential("apiKey").text);
    expect(refused.status).toBe(401);
    expect(refused.headers.get("x-request-id")).toBe("trace-43");
    const audited = await t.db.database.prisma.auditEvent.findFirst({ where: { requestId: "trace-43" } });
    expect(audited?.outcome).toBe("denied");
  });

  it("echoes a well-formed id on an HTTP route and logs it", async () => {
    const response = await fetch(`${t.broker.url}/healthz`, { headers: { "x-request-id": "lb-7f3a" } });
    expect(response.headers.get("x-request-id")).toBe("lb-7f3a");
    expect(response.headers.get("aegis-request-id")).toBe("lb-7f3a");
    await response.arrayBuffer();
    await expect.poll(() => lineOf("lb-7f3a", "http")).toMatchObject({ path: "/healthz", status: 200 });
  });

  it.each([["x".repeat(65)], ["two words"], ["<script>"]])("makes its own id instead of %j", async (given) => {
    for (const response of [
      await rpc(given),
      await fetch(`${t.broker.url}/healthz`, { headers: { "x-request-id": given } }),
    ]) {
      expect(response.headers.get("aegis-request-id")).toMatch(/^req_/);
      expect(response.headers.get("x-request-id")).toBeNull();
      await response.arrayBuffer();
    }
    expect(t.logs.join("\n")).not.toContain(given);
  });
});
