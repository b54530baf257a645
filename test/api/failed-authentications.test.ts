// One failed-authentication limit per client address, whichever way in the
// guesses come: an RPC, MintToken's client authentication, the OAuth token
// endpoint, the two sign-in pages. Over the limit nothing is looked up and
// the answer is 429 / resource_exhausted with Retry-After.
import { createHash, randomBytes } from "node:crypto";
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

describe.each(databaseKinds)("failed sign-ins on the sign-in pages on %s", (kind) => {
  let t: TestBroker;
  beforeAll(async () => {
    t = await startTestBroker(kind, { AEGIS_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: "3" });
  });
  afterAll(() => t.stop());

  const field = (html: string, name: string) =>
    (new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1] ?? "").replace(/&amp;/g, "&");
  const cookieOf = (page: Response) => (page.headers.getSetCookie()[0] ?? "").split(";")[0] ?? "";
  const post = (path: string, cookie: string, form: Record<string, string>) =>
    fetch(`${t.broker.url}${path}`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie },
      body: new URLSearchParams(form),
    });
  /** A wrong password on the authorization endpoint's sign-in, with a fresh request each time. */
  const authorizeLogin = async (username: string) => {
    const query = new URLSearchParams({
      client_id: "aegis-developer-portal",
      redirect_uri: `${t.broker.url}/developer/callback`,
      response_type: "code",
      code_challenge: createHash("sha256").update(randomBytes(32)).digest("base64url"),
      code_challenge_method: "S256",
      state: "s",
    });
    const page = await fetch(`${t.broker.url}/oauth/authorize?${query}`);
    const html = await page.text();
    return post("/oauth/authorize/login", cookieOf(page), {
      login_csrf: field(html, "login_csrf"),
      request: field(html, "request"),
      username,
      password: "guess",
    });
  };
  const deviceLogin = async (username: string) => {
    const page = await fetch(`${t.broker.url}/device`);
    const html = await page.text();
    return post("/device/login", cookieOf(page), {
      login_csrf: field(html, "login_csrf"),
      username,
      password: "guess",
    });
  };

  it("turns a password guesser away with 429 at /oauth/authorize/login as at /device/login, one limit for both", async () => {
    // Another name each time, so the per-account backoff never applies: only the per-address limit can.
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const login = i % 2 ? deviceLogin : authorizeLogin;
      statuses.push((await login(`guess${i}@example.com`)).status);
    }
    expect(statuses).toEqual([401, 401, 401, 429, 429, 429]);
    const refused = await authorizeLogin("one-more");
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
  });
});

describe.each(databaseKinds)("failed sign-ins from one IPv6 /64 on %s", (kind) => {
  let t: TestBroker;
  beforeAll(async () => {
    t = await startTestBroker(kind, {
      AEGIS_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: "3",
      AEGIS_TRUSTED_PROXIES: "127.0.0.1/32",
    });
  });
  afterAll(() => t.stop());

  it("counts every address of one /64 as one client, and another /64 apart", async () => {
    const field = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1] ?? "";
    const signIn = async (address: string, username: string) => {
      const forwarded = { "x-forwarded-for": address };
      const page = await fetch(`${t.broker.url}/device`, { headers: forwarded });
      const html = await page.text();
      const res = await fetch(`${t.broker.url}/device/login`, {
        method: "POST",
        redirect: "manual",
        headers: {
          ...forwarded,
          "content-type": "application/x-www-form-urlencoded",
          cookie: (page.headers.getSetCookie()[0] ?? "").split(";")[0] ?? "",
        },
        body: new URLSearchParams({ login_csrf: field(html, "login_csrf"), username, password: "guess" }),
      });
      return res.status;
    };
    // A guesser taking the next address of its /64 for every attempt.
    const statuses: number[] = [];
    for (let i = 1; i <= 6; i++) statuses.push(await signIn(`2001:db8:1:2::${i.toString(16)}`, `someone${i}`));
    expect(statuses).toEqual([401, 401, 401, 429, 429, 429]);
    // Another subscriber's /64 is another client.
    expect(await signIn("2001:db8:1:3::1", "someone-else")).toBe(401);
  });
});
