// The SDK's JWKS cache on a fake endpoint and a clock the test moves: how
// long a fetched set is used (Cache-Control), when it is fetched again
// (staleness, unknown kid, cooldown), and that it fails closed when a stale
// set cannot be refreshed.
import { generateKeyPairSync } from "node:crypto";
import type { JWK } from "jose";
import { describe, expect, it } from "vitest";
import { freshnessLifetimeSeconds, JwksCache } from "../../src/sdk/jwks-cache.js";

describe("freshnessLifetimeSeconds", () => {
  const cases: [cacheControl: string | undefined, age: string | undefined, seconds: number][] = [
    ["public, max-age=60", undefined, 60], // what the broker sends
    ["MAX-AGE=120 , public", undefined, 120],
    ["max-age=0", undefined, 0],
    [undefined, undefined, 60], // absent: the default
    ["public", undefined, 60], // no freshness directive: the default
    ["no-store", undefined, 0],
    ["no-cache", undefined, 0],
    ["public, max-age=60, no-cache", undefined, 0],
    ["max-age=86400", undefined, 600], // capped
    // invalid freshness information is stale (RFC 9111 §4.2.1), never the default
    ["max-age=abc", undefined, 0],
    ["max-age=", undefined, 0],
    ["max-age", undefined, 0],
    ["max-age=-5", undefined, 0],
    ["max-age=1.5", undefined, 0],
    ['max-age="60"', undefined, 0],
    ["max-age=60=1", undefined, 0],
    ["max-age=60, max-age=30", undefined, 0],
    // time already spent in a shared cache counts (RFC 9111 §4.2.3)
    ["max-age=60", "45", 15],
    ["max-age=60", "90", 0],
    ["max-age=60", "soon", 60],
  ];
  it.each(cases)("Cache-Control %j with Age %j: %i s", (cacheControl, age, seconds) => {
    const headers = new Headers();
    if (cacheControl !== undefined) headers.set("cache-control", cacheControl);
    if (age !== undefined) headers.set("age", age);
    expect(freshnessLifetimeSeconds(headers)).toBe(seconds);
  });
});

function publicJwk(kid: string): JWK {
  const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { ...publicKey.export({ format: "jwk" }), kid, alg: "ES256", use: "sig" } as JWK;
}

/** A JWKS endpoint the test controls: what it serves next, and how often it was asked. */
function fakeEndpoint() {
  let reply: () => Response = () => new Response("not yet", { status: 500 });
  const endpoint = {
    calls: 0,
    init: undefined as RequestInit | undefined,
    serve(keys: JWK[], cacheControl = "public, max-age=60") {
      reply = () => Response.json({ keys }, { headers: { "cache-control": cacheControl } });
    },
    reply(make: () => Response) {
      reply = make;
    },
    fail() {
      reply = () => {
        throw new TypeError("fetch failed");
      };
    },
    fetch: (async (_url: string | URL | Request, init?: RequestInit) => {
      endpoint.calls++;
      endpoint.init = init;
      return reply();
    }) as typeof fetch,
  };
  return endpoint;
}

const a = publicJwk("sk_a");
const b = publicJwk("sk_b");
const noMatchingKey = { code: "ERR_JWKS_NO_MATCHING_KEY" };

function setUp() {
  const endpoint = fakeEndpoint();
  const cache = new JwksCache("https://aegis.example/.well-known/jwks.json", endpoint.fetch);
  const token = { payload: "", signature: "" }; // only the header matters to a lookup
  const lookup = (now: number, kid: string) => cache.keysAt(now)({ alg: "ES256", kid }, token);
  return { endpoint, lookup };
}

describe("JwksCache", () => {
  it("uses a fetched set until it is older than max-age, then fetches again before verifying", async () => {
    const { endpoint, lookup } = setUp();
    endpoint.serve([a]);
    const key = await lookup(0, "sk_a");
    expect(await lookup(59_999, "sk_a")).toBe(key); // imported once per fetched set
    expect(endpoint.calls).toBe(1);
    expect(endpoint.init).toMatchObject({ method: "GET", redirect: "manual" });

    endpoint.serve([b]); // sk_a retired
    await expect(lookup(60_000, "sk_a")).rejects.toMatchObject(noMatchingKey);
    expect(endpoint.calls).toBe(2);
    await lookup(60_000, "sk_b");
    expect(endpoint.calls).toBe(2);
  });

  it("fetches again on an unknown kid at most once per 30 s cooldown", async () => {
    const { endpoint, lookup } = setUp();
    endpoint.serve([a], "max-age=600");
    await lookup(0, "sk_a");
    endpoint.serve([a, b]);
    await expect(lookup(29_999, "sk_b")).rejects.toMatchObject(noMatchingKey); // just fetched
    expect(endpoint.calls).toBe(1);
    await lookup(30_000, "sk_b");
    expect(endpoint.calls).toBe(2);
    for (let t = 30_001; t < 60_000; t += 1_000) {
      await expect(lookup(t, `sk_random_${t}`)).rejects.toMatchObject(noMatchingKey);
    }
    expect(endpoint.calls).toBe(2);
  });

  it("with no-store fetches again on use, at most once per cooldown", async () => {
    const { endpoint, lookup } = setUp();
    endpoint.serve([a], "no-store");
    await lookup(0, "sk_a");
    await lookup(29_999, "sk_a");
    expect(endpoint.calls).toBe(1);
    await lookup(30_000, "sk_a");
    expect(endpoint.calls).toBe(2);
  });

  it("fails closed when a stale set cannot be fetched again, retrying at most once a second", async () => {
    const { endpoint, lookup } = setUp();
    endpoint.serve([a]);
    await lookup(0, "sk_a");
    endpoint.fail();
    await expect(lookup(60_000, "sk_a")).rejects.toThrow(/could not be fetched: fetch failed/);
    expect(endpoint.calls).toBe(2);
    await expect(lookup(60_999, "sk_a")).rejects.toThrow(/last fetch failed; refusing until one succeeds/);
    expect(endpoint.calls).toBe(2);
    await expect(lookup(61_000, "sk_a")).rejects.toThrow(/could not be fetched/);
    expect(endpoint.calls).toBe(3);
    endpoint.serve([a]);
    await lookup(62_000, "sk_a");
    expect(endpoint.calls).toBe(4);
  });

  it("keeps a fresh set when a refetch for an unknown kid fails", async () => {
    const { endpoint, lookup } = setUp();
    endpoint.serve([a]);
    await lookup(0, "sk_a");
    endpoint.fail();
    await expect(lookup(30_000, "sk_b")).rejects.toThrow(/could not be fetched/);
    await lookup(30_000, "sk_a");
    await lookup(59_999, "sk_a");
    expect(endpoint.calls).toBe(2);
  });

  it("shares one fetch among concurrent verifications", async () => {
    const { endpoint, lookup } = setUp();
    endpoint.serve([a]);
    await Promise.all(Array.from({ length: 10 }, () => lookup(0, "sk_a")));
    expect(endpoint.calls).toBe(1);
  });

  it("takes a clock moved back before the fetch as a stale set", async () => {
    const { endpoint, lookup } = setUp();
    endpoint.serve([a]);
    await lookup(100_000, "sk_a");
    await lookup(50_000, "sk_a");
    expect(endpoint.calls).toBe(2);
  });

  it.each([
    ["a redirect", () => new Response(null, { status: 302, headers: { location: "https://evil.example/jwks" } })],
    ["an error status", () => new Response("{}", { status: 503 })],
    ["a body that is not JSON", () => new Response("<html>", { status: 200 })],
    ["JSON that is not a key set", () => Response.json({ keys: "sk_a" })],
  ])("refuses %s as a key set", async (_name, reply) => {
    const { endpoint, lookup } = setUp();
    endpoint.reply(reply);
    await expect(lookup(0, "sk_a")).rejects.toThrow(/could not be fetched/);
  });
});
