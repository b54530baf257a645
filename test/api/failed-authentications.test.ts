// One failed-authentication limit per client address, whichever way in the
// guesses come: an RPC, MintToken's client authentication, the OAuth token
// endpoint. Over the limit nothing is looked up and the answer is 429 /
// resource_exhausted with Retry-After.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateCredential } from "../../src/protocol/credential-format.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";

describe.each(databaseKinds)("failed authentications on %s", (kind) => {
  let t: TestBroker;
  beforeAll(async () => {
    t = await startTestBroker(kind, { AEGIS_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: "30" });
  });
  afterAll(() => t.stop());

  const badKey = () => generateCredential("apiKey").text;
  const rpc = (method: string) =>
    fetch(`${t.broker.url}/${method}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${badKey()}` },
      body: JSON.stringify(method.endsWith("MintToken") ? { audience: "a" } : {}),
    });
  const token = () =>
    fetch(`${t.broker.url}/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", client_id: "x", client_secret: badKey() }),
    });

  it("counts bad keys at MintToken, /oauth/token and WhoAmI against one limit", async () => {
    const statuses: number[] = [];
    // 40 guesses spread over three doors, as a key guesser would.
    for (let i = 0; i < 40; i++) {
      const door = [
        () => rpc("aegis.token.v1.TokenService/MintToken"),
        token,
        () => rpc("aegis.principal.v1.PrincipalService/WhoAmI"),
      ][i % 3] as () => Promise<Response>;
      statuses.push((await door()).status);
    }
    expect(statuses.slice(0, 30).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(30).every((s) => s === 429)).toBe(true);
    const refused = await token();
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    expect((await rpc("aegis.token.v1.TokenService/MintToken")).status).toBe(429);
  });
});
