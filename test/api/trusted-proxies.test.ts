// Behind a load balancer every client shares the balancer's address: one key
// guesser would lock everybody out. With AEGIS_TRUSTED_PROXIES naming the
// balancer, the failed-authentication limit and the audit trail see the
// forwarded client; without it (or from any other peer) the forwarding
// headers are ignored, so nobody escapes a limit by inventing an address.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateCredential } from "../../src/protocol/credential-format.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";

/** A WhoAmI with a key nobody holds, as if through a proxy that forwarded `headers`. */
function guess(t: TestBroker, headers: Record<string, string>, requestId: string) {
  return fetch(`${t.broker.url}/aegis.principal.v1.PrincipalService/WhoAmI`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: `Bearer ${generateCredential("apiKey").text}`,
      "x-request-id": requestId,
      ...headers,
    },
    body: "{}",
  });
}

const auditedClient = async (t: TestBroker, requestId: string) =>
  (await t.db.database.prisma.auditEvent.findFirst({ where: { requestId } }))?.client;

describe.each(databaseKinds)("trusted proxies on %s", (kind) => {
  describe("with AEGIS_TRUSTED_PROXIES=127.0.0.1/32 (the test's own address)", () => {
    let t: TestBroker;
    beforeAll(async () => {
      t = await startTestBroker(kind, {
        AEGIS_TRUSTED_PROXIES: "127.0.0.1/32",
        AEGIS_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: "3",
      });
    });
    afterAll(() => t.stop());

    it("limits failed authentications per forwarded client: one guesser does not lock out another", async () => {
      const a = { "x-forwarded-for": "203.0.113.7" };
      const b = { forwarded: "for=198.51.100.9;proto=https" };
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await guess(t, a, `a-${kind}-${i}`)).status);
      expect(statuses).toEqual([401, 401, 401, 429]);
      // Another client behind the same proxy is still only told its key is wrong.
      expect((await guess(t, b, `b-${kind}-0`)).status).toBe(401);
      // A hop the guesser wrote left of its real address changes nothing.
      expect((await guess(t, { "x-forwarded-for": "192.0.2.1, 203.0.113.7" }, `a-${kind}-4`)).status).toBe(429);
    });

    it("writes the forwarded client into the audit trail", async () => {
      expect(await auditedClient(t, `a-${kind}-0`)).toMatch(/^203\.0\.113\.7 /);
      expect(await auditedClient(t, `b-${kind}-0`)).toMatch(/^198\.51\.100\.9 /);
    });

    it("holds the forwarded client to the same limit at an HTTP route", async () => {
      const token = (requestId: string) =>
        fetch(`${t.broker.url}/oauth/token`, {
          method: "POST",
          headers: {
            "content-type": "application/x-www-form-urlencoded",
            "x-forwarded-for": "203.0.113.7",
            "x-request-id": requestId,
          },
          body: new URLSearchParams({ grant_type: "client_credentials", client_id: "x", client_secret: "nope" }),
        });
      // 203.0.113.7 is over its limit from the RPC guesses above, whichever way in.
      expect((await token(`c-${kind}-0`)).status).toBe(429);
    });
  });

  describe("without AEGIS_TRUSTED_PROXIES", () => {
    let t: TestBroker;
    beforeAll(async () => {
      t = await startTestBroker(kind, { AEGIS_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: "3" });
    });
    afterAll(() => t.stop());

    it("ignores a spoofed X-Forwarded-For: a new invented address each time escapes no limit", async () => {
      const statuses = [];
      for (let i = 0; i < 4; i++) {
        statuses.push((await guess(t, { "x-forwarded-for": `203.0.113.${i}` }, `s-${kind}-${i}`)).status);
      }
      expect(statuses).toEqual([401, 401, 401, 429]);
      expect(await auditedClient(t, `s-${kind}-0`)).toMatch(/^127\.0\.0\.1 /);
    });
  });
});
