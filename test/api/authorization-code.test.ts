// The authorization code grant with PKCE (RFC 6749 §4.1, RFC 7636, RFC 9207)
// against the running broker: a stock client library (openid-client) builds
// the authorization URL from the discovery metadata, the person signs in and
// consents with real form posts, the library parses the callback (checking
// `state` and `iss`) and redeems the code; then the abuse cases fail as the
// RFCs require.
import { createHash } from "node:crypto";
import { Code } from "@connectrpc/connect";
import * as client from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceAuthService } from "../../gen/proto/aegis/device/v1/device_pb.js";
import { PersonService } from "../../gen/proto/aegis/person/v1/person_pb.js";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { verifyAccessToken } from "../../src/sdk/index.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { failure } from "../support/errors.js";
import { type Actor, createActor, registerApi } from "../support/fixtures.js";

const portal = "aegis-developer-portal";
const password = "correct horse battery staple";

/** One value of a hidden or checkbox field of a page, unescaped. */
function fields(html: string, name: string): string[] {
  const text = (s: string) =>
    s
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'")
      .replace(/&lt;/g, "<")
      .replace(/&gt;/g, ">")
      .replace(/&amp;/g, "&");
  return [...html.matchAll(new RegExp(`name="${name}" value="([^"]*)"`, "g"))].map((m) => text(m[1] ?? ""));
}
const field = (html: string, name: string) => fields(html, name)[0] ?? "";

/** A browser, as far as these pages need one: cookies kept per path-less name, redirects not followed. */
class Browser {
  readonly #cookies = new Map<string, string>();
  constructor(readonly base: string) {}
  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const cookie = [...this.#cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    const res = await fetch(new URL(url, this.base), {
      ...init,
      redirect: "manual",
      headers: { ...(init.headers as Record<string, string>), ...(cookie ? { cookie } : {}) },
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const [name, value] = (pair ?? "").split("=");
      if (!name) continue;
      if (value && !/max-age=0/i.test(line)) this.#cookies.set(name, value);
      else this.#cookies.delete(name);
    }
    return res;
  }
  post(path: string, form: Record<string, string | string[]>): Promise<Response> {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) for (const one of [v].flat()) body.append(k, one);
    return this.request(path, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body,
    });
  }
}

describe.each(databaseKinds)("authorization code grant on %s", (kind) => {
  let t: TestBroker;
  let person: Actor;
  let config: client.Configuration;
  let callback: string;

  beforeAll(async () => {
    t = await startTestBroker(kind);
    person = await createActor(t, {
      name: "Alice Example",
      scopes: ["account.password.set", "oauth_client.create", "agent.list"],
    });
    await t.client(DeviceAuthService, { key: person.key }).setLocalPassword({
      principalId: person.principalId,
      username: "alice",
      password,
    });
    callback = `${t.broker.url}/developer/callback`;
    config = await client.discovery(new URL(t.broker.url), portal, undefined, client.None(), {
      execute: [client.allowInsecureRequests],
      algorithm: "oauth2",
    });
  });
  afterAll(() => t.stop());

  /** A fresh authorization request as the library builds it. */
  async function authorization(params: Record<string, string> = {}, redirectUri = callback) {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
      ...params,
    });
    return { url, verifier, state };
  }

  /** Signs in on the broker's page and reaches the consent page. */
  async function consent(browser: Browser, url: URL, username = "alice") {
    const login = await browser.request(url.href);
    expect(login.status).toBe(200);
    const page = await login.text();
    const signedIn = await browser.post("/oauth/authorize/login", {
      login_csrf: field(page, "login_csrf"),
      request: field(page, "request"),
      username,
      password,
    });
    expect(signedIn.status).toBe(303);
    const consentPage = await browser.request(signedIn.headers.get("location") ?? "");
    expect(consentPage.status).toBe(200);
    return { response: consentPage, html: await consentPage.text() };
  }

  /** Signs in, decides, and returns where the broker sent the browser. */
  async function authorize(url: URL, decision: "approve" | "deny" = "approve", scopes?: string[]) {
    const browser = new Browser(t.broker.url);
    const { html } = await consent(browser, url);
    const decided = await browser.post("/oauth/authorize/decide", {
      csrf: field(html, "csrf"),
      request: field(html, "request"),
      decision,
      scope: scopes ?? fields(html, "scope"),
    });
    expect(decided.status).toBe(303);
    return new URL(decided.headers.get("location") ?? "");
  }

  it("advertises the authorization code grant with S256 and RFC 9207 in the metadata", () => {
    const as = config.serverMetadata();
    expect(as.authorization_endpoint).toBe(`${t.broker.url}/oauth/authorize`);
    expect(as.code_challenge_methods_supported).toEqual(["S256"]);
    expect(as.response_types_supported).toContain("code");
    expect(as.grant_types_supported).toContain("authorization_code");
    expect(as.authorization_response_iss_parameter_supported).toBe(true);
  });

  it("completes with openid-client: state and iss round-trip, the token is the person's and verifies", async () => {
    const { url, verifier, state } = await authorization({ scope: "agent.list" });
    const back = await authorize(url);
    expect(back.origin + back.pathname).toBe(callback);
    expect(back.searchParams.get("state")).toBe(state);
    expect(back.searchParams.get("iss")).toBe(t.broker.url);
    const tokens = await client.authorizationCodeGrant(config, back, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    expect(tokens.token_type).toBe("bearer");
    expect(tokens.scope).toBe("agent.list");
    const claims = await verifyAccessToken(tokens.access_token, {
      issuer: t.broker.url,
      audience: t.broker.url,
      jwksUri: `${t.broker.url}/.well-known/jwks.json`,
    });
    expect(claims).toMatchObject({ sub: person.principalId, client_id: portal, scope: "agent.list" });
    const me = await t.client(PrincipalService, { key: tokens.access_token }).whoAmI({});
    expect(me.principal?.id).toBe(person.principalId);
    // The refresh token rotates like the device flow's.
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token ?? "");
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
  });

  it("refuses a callback whose iss or state is not the broker's (checked by the library)", async () => {
    const { url, verifier, state } = await authorization();
    const back = await authorize(url);
    const forged = new URL(back);
    forged.searchParams.set("iss", "https://evil.example");
    const causeOf = (p: Promise<unknown>) =>
      p.then(
        () => "accepted",
        (e: Error) => String((e.cause as Error | undefined)?.message ?? e.message),
      );
    expect(
      await causeOf(
        client.authorizationCodeGrant(config, forged, { pkceCodeVerifier: verifier, expectedState: state }),
      ),
    ).toMatch(/"iss"/);
    expect(
      await causeOf(client.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: "x" })),
    ).toMatch(/"state"/);
  });

  it("binds the token and its refresh token to a DPoP key when the exchange carries a proof", async () => {
    const { url, verifier, state } = await authorization({ scope: "agent.list" });
    const back = await authorize(url);
    const keyPair = await client.randomDPoPKeyPair("ES256");
    const DPoP = client.getDPoPHandle(config, keyPair);
    const tokens = await client.authorizationCodeGrant(
      config,
      back,
      { pkceCodeVerifier: verifier, expectedState: state },
      undefined,
      { DPoP },
    );
    expect(tokens.token_type).toBe("dpop");
    const [, payload] = tokens.access_token.split(".");
    const claims = JSON.parse(Buffer.from(payload ?? "", "base64url").toString()) as { cnf?: { jkt: string } };
    const jwk = await crypto.subtle.exportKey("jwk", keyPair.publicKey);
    const thumbprint = createHash("sha256")
      .update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }))
      .digest("base64url");
    expect(claims.cnf?.jkt).toBe(thumbprint);
    // Without a proof, the refresh token is refused.
    await expect(client.refreshTokenGrant(config, tokens.refresh_token ?? "")).rejects.toMatchObject({
      error: "invalid_grant",
    });
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token ?? "", undefined, { DPoP });
    expect(refreshed.token_type).toBe("dpop");
  });

  it("refuses a wrong code_verifier (RFC 7636 §4.6)", async () => {
    const { url, state } = await authorization();
    const back = await authorize(url);
    await expect(
      client.authorizationCodeGrant(config, back, {
        pkceCodeVerifier: client.randomPKCECodeVerifier(),
        expectedState: state,
      }),
    ).rejects.toMatchObject({ error: "invalid_grant" });
  });

  it("refuses plain PKCE and a missing challenge at the redirect URI, with state and iss", async () => {
    for (const params of [
      { code_challenge_method: "plain", code_challenge: "a".repeat(43) },
      { code_challenge_method: "", code_challenge: "" },
    ]) {
      const browser = new Browser(t.broker.url);
      const url = new URL(`${t.broker.url}/oauth/authorize`);
      url.search = new URLSearchParams({
        response_type: "code",
        client_id: portal,
        redirect_uri: callback,
        state: "s-1",
        ...params,
      }).toString();
      const res = await browser.request(url.href);
      expect(res.status).toBe(303);
      const back = new URL(res.headers.get("location") ?? "");
      expect(back.origin + back.pathname).toBe(callback);
      expect(back.searchParams.get("error")).toBe("invalid_request");
      expect(back.searchParams.get("state")).toBe("s-1");
      expect(back.searchParams.get("iss")).toBe(t.broker.url);
    }
  });

  it("shows an error page and never redirects for an unknown client or an unregistered redirect URI", async () => {
    for (const [clientId, redirectUri] of [
      [portal, `${t.broker.url}/developer/callback/other`],
      [portal, "https://evil.example/developer/callback"],
      [portal, `${callback}?x=1`],
      ["cli_unknown", callback],
    ] as const) {
      const url = new URL(`${t.broker.url}/oauth/authorize`);
      url.search = new URLSearchParams({
        response_type: "code",
        client_id: clientId,
        redirect_uri: redirectUri,
        code_challenge: "a".repeat(43),
        code_challenge_method: "S256",
        state: "s",
      }).toString();
      const res = await fetch(url, { redirect: "manual" });
      expect(res.status).toBe(400);
      expect(res.headers.get("location")).toBeNull();
      expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
      expect(await res.text()).toContain("You were not sent back to it.");
    }
    const refused = await t.db.database.prisma.auditEvent.count({
      where: { action: "authorize.request", outcome: "denied" },
    });
    expect(refused).toBeGreaterThanOrEqual(4);
  });

  it("redeems a code once: a second redemption fails and revokes what the first issued", async () => {
    const { url, verifier, state } = await authorization({ scope: "agent.list" });
    const back = await authorize(url);
    const first = await client.authorizationCodeGrant(config, back, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    await t.client(PrincipalService, { key: first.access_token }).whoAmI({});
    await expect(
      client.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: state }),
    ).rejects.toMatchObject({ error: "invalid_grant" });
    const revoked = await failure(t.client(PrincipalService, { key: first.access_token }).whoAmI({}));
    expect(revoked?.code).toBe(Code.Unauthenticated);
    await expect(client.refreshTokenGrant(config, first.refresh_token ?? "")).rejects.toMatchObject({
      error: "invalid_grant",
    });
  });

  it("leaves no usable token when one code is redeemed by 5 concurrent requests", async () => {
    const { url, verifier, state } = await authorization({ scope: "agent.list" });
    const back = await authorize(url);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 5 }, () =>
        client.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: state }),
      ),
    );
    const issued = outcomes.flatMap((o) => (o.status === "fulfilled" ? [o.value] : []));
    expect(issued.length).toBeLessThanOrEqual(1);
    for (const o of outcomes) if (o.status === "rejected") expect(o.reason).toMatchObject({ error: "invalid_grant" });
    for (const tokens of issued) {
      const refused = await failure(t.client(PrincipalService, { key: tokens.access_token }).whoAmI({}));
      expect(refused?.code).toBe(Code.Unauthenticated);
    }
  });

  it("gives the portal's client no device flow (it serves every tenant)", async () => {
    const res = await fetch(`${t.broker.url}/oauth/device_authorization`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: portal }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "unauthorized_client" });
  });

  it("redeems a code through the ExchangeAuthorizationCode RPC, its policy twin", async () => {
    const { url, verifier } = await authorization({ scope: "agent.list" });
    const back = await authorize(url);
    const request = {
      clientId: portal,
      code: back.searchParams.get("code") ?? "",
      redirectUri: callback,
      codeVerifier: verifier,
    };
    const anonymous = t.client(DeviceAuthService, { key: undefined });
    const wrong = await failure(anonymous.exchangeAuthorizationCode({ ...request, codeVerifier: "x".repeat(43) }));
    expect(wrong?.code).toBe(Code.InvalidArgument);
    const { tokens } = await anonymous.exchangeAuthorizationCode(request);
    expect(tokens?.scope).toBe("agent.list");
    expect(tokens?.tokenType).toBe("Bearer");
  });

  it("expires a code after 60 s", async () => {
    const { url, verifier, state } = await authorization();
    const back = await authorize(url);
    t.clock.advance(61_000);
    await expect(
      client.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: state }),
    ).rejects.toMatchObject({ error: "invalid_grant" });
  });

  it("refuses a code not yet redeemed once its person was suspended, even after reactivation", async () => {
    const dora = await createActor(t, { tenantId: person.tenantId, scopes: ["agent.list"], name: "Dora" });
    await t.client(DeviceAuthService, { key: person.key }).setLocalPassword({
      principalId: dora.principalId,
      username: "dora",
      password,
    });
    const { url, verifier, state } = await authorization({ scope: "agent.list" });
    const browser = new Browser(t.broker.url);
    const { html } = await consent(browser, url, "dora");
    const decided = await browser.post("/oauth/authorize/decide", {
      csrf: field(html, "csrf"),
      request: field(html, "request"),
      decision: "approve",
      scope: fields(html, "scope"),
    });
    const back = new URL(decided.headers.get("location") ?? "");
    expect(back.searchParams.get("code")).toBeTruthy();
    // Suspended before the client redeems the code, then reactivated within its 60 s.
    const boss = await createActor(t, {
      tenantId: person.tenantId,
      scopes: ["person.suspend", "person.reactivate", "agent.list"],
    });
    await t.client(PersonService, { key: boss.key }).suspendPerson({ personId: dora.principalId });
    await t.client(PersonService, { key: boss.key }).reactivatePerson({ personId: dora.principalId });
    await expect(
      client.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: state }),
    ).rejects.toMatchObject({ error: "invalid_grant" });
    expect(await t.db.database.prisma.refreshToken.count({ where: { principalId: dora.principalId } })).toBe(0);
  });

  it("refuses a code presented with another redirect URI or by another client", async () => {
    const { url, verifier } = await authorization();
    const back = await authorize(url);
    const code = back.searchParams.get("code") ?? "";
    const token = (body: Record<string, string>) =>
      fetch(`${t.broker.url}/oauth/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "authorization_code", code, code_verifier: verifier, ...body }),
      });
    const otherUri = await token({ client_id: portal, redirect_uri: `${callback}/x` });
    expect(otherUri.status).toBe(400);
    expect(await otherUri.json()).toMatchObject({ error: "invalid_grant" });
    const otherClient = await token({ client_id: "aegis-cli", redirect_uri: callback });
    expect(otherClient.status).toBe(400);
    expect(((await otherClient.json()) as { error: string }).error).toMatch(/unauthorized_client|invalid_grant/);
    const unknown = await token({ client_id: "cli_nobody", redirect_uri: callback });
    expect(unknown.status).toBe(401);
    expect(await unknown.json()).toMatchObject({ error: "invalid_client" });
  });

  it("gives no more than the person holds, and no more than they leave ticked", async () => {
    const asked = await authorization({ scope: "agent.list audit.read" });
    const browser = new Browser(t.broker.url);
    const { html } = await consent(browser, asked.url);
    expect(html).toContain("audit.read");
    expect(fields(html, "scope")).toEqual(["agent.list"]); // audit.read is not held: not offered
    const decided = await browser.post("/oauth/authorize/decide", {
      csrf: field(html, "csrf"),
      request: field(html, "request"),
      decision: "approve",
      scope: ["agent.list", "audit.read"], // a forged tick of the unheld one
    });
    const tokens = await client.authorizationCodeGrant(config, new URL(decided.headers.get("location") ?? ""), {
      pkceCodeVerifier: asked.verifier,
      expectedState: asked.state,
    });
    expect(tokens.scope).toBe("agent.list");

    const unticked = await authorization({ scope: "agent.list" });
    const back = await authorize(unticked.url, "approve", []);
    const none = await client.authorizationCodeGrant(config, back, {
      pkceCodeVerifier: unticked.verifier,
      expectedState: unticked.state,
    });
    expect(none.scope ?? "").toBe("");
  });

  it("tells the client when the person denies (access_denied with state and iss)", async () => {
    const { url, state } = await authorization();
    const back = await authorize(url, "deny");
    expect(back.searchParams.get("error")).toBe("access_denied");
    expect(back.searchParams.get("state")).toBe(state);
    expect(back.searchParams.get("iss")).toBe(t.broker.url);
    expect(back.searchParams.get("code")).toBeNull();
    const denied = await t.db.database.prisma.auditEvent.count({
      where: { action: "authorize.deny", actorId: person.principalId },
    });
    expect(denied).toBeGreaterThan(0);
  });

  it("issues tokens for a resource server of the person's tenant, and refuses another tenant's", async () => {
    const admin = await createActor(t, {
      tenantId: person.tenantId,
      scopes: ["resource_server.create", "grant.create"],
    });
    const mine = await registerApi(t, admin.key, {
      identifier: "https://reports.example/api",
      scopes: ["reports:view"],
      grants: { [person.principalId]: ["reports:view"] },
    });
    const asked = await authorization({ scope: "reports:view", resource: mine.identifier });
    const tokens = await client.authorizationCodeGrant(config, await authorize(asked.url), {
      pkceCodeVerifier: asked.verifier,
      expectedState: asked.state,
    });
    const [, payload] = tokens.access_token.split(".");
    expect(JSON.parse(Buffer.from(payload ?? "", "base64url").toString())).toMatchObject({
      aud: mine.identifier,
      scope: "reports:view",
    });

    const stranger = await createActor(t, { scopes: ["resource_server.create"] });
    const theirs = await registerApi(t, stranger.key, {
      identifier: "https://theirs.example/api",
      scopes: ["data:read"],
    });
    const other = await authorization({ scope: "data:read", resource: theirs.identifier });
    const browser = new Browser(t.broker.url);
    const login = await browser.request(other.url.href);
    const page = await login.text();
    const signedIn = await browser.post("/oauth/authorize/login", {
      login_csrf: field(page, "login_csrf"),
      request: field(page, "request"),
      username: "alice",
      password,
    });
    const refused = await browser.request(signedIn.headers.get("location") ?? "");
    expect(refused.status).toBe(303);
    const back = new URL(refused.headers.get("location") ?? "");
    expect(back.searchParams.get("error")).toBe("invalid_target");
    expect(back.searchParams.get("state")).toBe(other.state);
  });

  it("lets a tenant's native client use a loopback redirect URI on any port (RFC 8252 §7.3)", async () => {
    const { client: native } = await t.client(DeviceAuthService, { key: person.key }).createOAuthClient({
      name: "Native tool",
      allowedScopes: ["agent.list"],
      redirectUris: ["http://127.0.0.1/callback"],
    });
    expect(native?.redirectUris).toEqual(["http://127.0.0.1/callback"]);
    const nativeConfig = await client.discovery(new URL(t.broker.url), native?.id ?? "", undefined, client.None(), {
      execute: [client.allowInsecureRequests],
      algorithm: "oauth2",
    });
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(nativeConfig, {
      redirect_uri: "http://127.0.0.1:49152/callback",
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
      scope: "agent.list",
    });
    const tokens = await client.authorizationCodeGrant(nativeConfig, await authorize(url), {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    expect(tokens.scope).toBe("agent.list");
    const wrongPath = new URL(url);
    wrongPath.searchParams.set("redirect_uri", "http://127.0.0.1:49152/other");
    expect((await fetch(wrongPath, { redirect: "manual" })).status).toBe(400);
    const badUri = await failure(
      t.client(DeviceAuthService, { key: person.key }).createOAuthClient({
        name: "Bad",
        redirectUris: ["http://example.com/callback"],
      }),
    );
    expect(badUri?.code).toBe(Code.InvalidArgument);
  });

  it("refuses a tenant's client to a person of another tenant", async () => {
    const other = await createActor(t, { scopes: ["oauth_client.create"] });
    const { client: theirs } = await t.client(DeviceAuthService, { key: other.key }).createOAuthClient({
      name: "Their app",
      redirectUris: ["https://app.example/cb"],
    });
    const url = new URL(`${t.broker.url}/oauth/authorize`);
    url.search = new URLSearchParams({
      response_type: "code",
      client_id: theirs?.id ?? "",
      redirect_uri: "https://app.example/cb",
      code_challenge: "a".repeat(43),
      code_challenge_method: "S256",
      state: "s-2",
    }).toString();
    const browser = new Browser(t.broker.url);
    const page = await (await browser.request(url.href)).text();
    const signedIn = await browser.post("/oauth/authorize/login", {
      login_csrf: field(page, "login_csrf"),
      request: field(page, "request"),
      username: "alice",
      password,
    });
    const refused = await browser.request(signedIn.headers.get("location") ?? "");
    const back = new URL(refused.headers.get("location") ?? "");
    expect(back.origin).toBe("https://app.example");
    expect(back.searchParams.get("error")).toBe("access_denied");
  });

  it("protects the sign-in and the decision: CSRF, wrong passwords audited and limited", async () => {
    const { url } = await authorization();
    const browser = new Browser(t.broker.url);
    const page = await (await browser.request(url.href)).text();
    const forged = await browser.post("/oauth/authorize/login", {
      login_csrf: "forged",
      request: field(page, "request"),
      username: "alice",
      password,
    });
    expect(forged.status).toBe(403);
    const again = await (await browser.request(url.href)).text();
    const wrong = await browser.post("/oauth/authorize/login", {
      login_csrf: field(again, "login_csrf"),
      request: field(again, "request"),
      username: "alice",
      password: "wrong password, clearly",
    });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain("Wrong username or password.");
    const audited = await t.db.database.prisma.auditEvent.count({
      where: { action: "authorize.login", outcome: "denied", reason: "WRONG_CREDENTIALS" },
    });
    expect(audited).toBeGreaterThan(0);
    const { html } = await consent(browser, url);
    const noCsrf = await browser.post("/oauth/authorize/decide", {
      csrf: "forged",
      request: field(html, "request"),
      decision: "approve",
    });
    expect(noCsrf.status).toBe(403);
    expect(noCsrf.headers.get("location")).toBeNull();
    const noSession = await new Browser(t.broker.url).post("/oauth/authorize/decide", {
      csrf: field(html, "csrf"),
      request: field(html, "request"),
      decision: "approve",
    });
    expect(noSession.status).toBe(401);
  });

  it("puts no code or token in the logs, the audit trail or the database", async () => {
    const { url, verifier, state } = await authorization({ scope: "agent.list" });
    const back = await authorize(url);
    const code = back.searchParams.get("code") ?? "";
    const tokens = await client.authorizationCodeGrant(config, back, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    const secrets = [code, tokens.access_token, tokens.refresh_token ?? "", verifier];
    const logs = t.logs.join("\n");
    const json = (rows: unknown) => JSON.stringify(rows, (_k, v) => (typeof v === "bigint" ? String(v) : v));
    const audit = json(await t.db.database.prisma.auditEvent.findMany());
    const codes = json(await t.db.database.prisma.authorizationCode.findMany());
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThan(20);
      expect(logs).not.toContain(secret);
      expect(audit).not.toContain(secret);
      expect(codes).not.toContain(secret);
    }
    const exchanged = await t.db.database.prisma.auditEvent.count({
      where: { action: "authorization_code.exchange", outcome: "success", actorId: person.principalId },
    });
    expect(exchanged).toBeGreaterThan(0);
  });
});
