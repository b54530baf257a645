// Every HTTP request, not only RPCs, gets a request id and one JSON log line;
// a route that fails logs its cause and answers a bare server_error.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";

describe.each(databaseKinds)("HTTP request logging on %s", (kind) => {
  let t: TestBroker;
  beforeAll(async () => {
    t = await startTestBroker(kind);
  });
  afterAll(() => t.stop());

  const linesOf = (requestId: string) =>
    t.logs.filter((line) => line.includes(requestId)).map((line) => JSON.parse(line) as Record<string, unknown>);

  it.each([
    ["GET", "/.well-known/jwks.json", 200],
    ["GET", "/healthz", 200],
    ["GET", "/device", 200],
    ["GET", "/no/such/page", 404],
    ["POST", "/oauth/token", 400],
  ])("logs %s %s once with its request id", async (method, path, status) => {
    const response = await fetch(`${t.broker.url}${path}`, {
      method,
      ...(method === "POST" ? { headers: { "content-type": "application/x-www-form-urlencoded" }, body: "" } : {}),
    });
    expect(response.status).toBe(status);
    const requestId = response.headers.get("aegis-request-id") ?? "";
    expect(requestId).toMatch(/^req_/);
    await response.arrayBuffer();
    await expect.poll(() => linesOf(requestId).filter((l) => l.msg === "http").length).toBe(1);
    expect(linesOf(requestId).find((l) => l.msg === "http")).toMatchObject({ method, path, status });
  });

  it("logs the cause of a failing route and answers server_error without it", async () => {
    // Break the table the device flow's endpoint reads: its query now fails.
    await t.db.database.sql.query("ALTER TABLE oauth_client RENAME TO oauth_client_gone");
    try {
      const response = await fetch(`${t.broker.url}/oauth/device_authorization`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ client_id: "aegis-cli" }),
      });
      expect(response.status).toBe(500);
      const body = await response.text();
      expect(JSON.parse(body)).toEqual({ error: "server_error" });
      expect(body).not.toMatch(/oauth_client/);
      const requestId = response.headers.get("aegis-request-id") ?? "";
      await expect.poll(() => linesOf(requestId).length).toBe(2);
      const failed = linesOf(requestId).find((l) => l.level === 50);
      expect(JSON.stringify(failed?.err)).toMatch(/oauth_client/);
    } finally {
      await t.db.database.sql.query("ALTER TABLE oauth_client_gone RENAME TO oauth_client");
    }
  });
});
