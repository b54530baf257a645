// Signing in to the developer portal's client with authorization code + PKCE
// in a real browser (headless Chromium from Debian, driven by
// playwright-core): openid-client builds the authorization URL, the person
// signs in and allows on the broker's pages, the browser lands on the
// portal's callback (its strict CSP still lets the consent form lead there),
// and openid-client checks the callback's state and iss and redeems the code.

import * as client from "openid-client";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceAuthService } from "../../gen/proto/aegis/device/v1/device_pb.js";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { launchChromium } from "../support/chromium.js";
import { type Actor, createActor } from "../support/fixtures.js";

const password = "correct horse battery staple";

describe("authorization code sign-in in a real browser", () => {
  let t: TestBroker;
  let person: Actor;
  let browser: Browser;
  let config: client.Configuration;

  beforeAll(async () => {
    t = await startTestBroker("pglite");
    person = await createActor(t, { name: "Alice Example", scopes: ["account.password.set", "agent.list"] });
    await t.client(DeviceAuthService, { key: person.key }).setLocalPassword({
      principalId: person.principalId,
      username: "alice",
      password,
    });
    config = await client.discovery(new URL(t.broker.url), "aegis-developer-portal", undefined, client.None(), {
      execute: [client.allowInsecureRequests],
      algorithm: "oauth2",
    });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await t.stop();
  });

  async function start(scope: string) {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: `${t.broker.url}/developer/callback`,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
      scope,
    });
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(url.href);
    await page.getByLabel("Username").fill("alice");
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Allow Aegis developer portal?" }).waitFor();
    return { verifier, state, page, context };
  }

  // The portal's callback page takes the response out of the address bar
  // (history.replaceState) as soon as its script runs, so the response is
  // read from the navigation request, and the page is seen to drop it.
  async function landOnCallback(page: Page, button: "Allow" | "Deny"): Promise<URL> {
    const [request] = await Promise.all([
      page.waitForRequest((r) => r.isNavigationRequest() && new URL(r.url()).pathname === "/developer/callback"),
      page.getByRole("button", { name: button }).click(),
    ]);
    await page.waitForURL((url) => url.pathname === "/developer/callback" && url.search === "");
    return new URL(request.url());
  }

  it("signs in, allows, lands on the callback, and the library redeems the code", async () => {
    const { verifier, state, page, context } = await start("agent.list audit.read");
    const text = await page.locator("main").innerText();
    expect(text).toContain("agent.list");
    expect(text).toContain("you do not hold it");
    expect(text).toContain(t.broker.url);
    const [session] = (await context.cookies()).filter((c) => c.name === "aegis_authorize_session");
    expect(session?.httpOnly).toBe(true);
    expect(session?.sameSite).toBe("Lax");
    expect(session?.path).toBe("/oauth/authorize");

    const callback = await landOnCallback(page, "Allow");
    expect(callback.searchParams.get("iss")).toBe(t.broker.url);
    const tokens = await client.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    expect(tokens.scope).toBe("agent.list");
    const me = await t.client(PrincipalService, { key: tokens.access_token }).whoAmI({});
    expect(me.principal?.id).toBe(person.principalId);
    await context.close();
  });

  it("sends the browser back with access_denied when the person denies", async () => {
    const { state, page, context } = await start("agent.list");
    const callback = await landOnCallback(page, "Deny");
    expect(callback.searchParams.get("error")).toBe("access_denied");
    expect(callback.searchParams.get("state")).toBe(state);
    expect(callback.searchParams.get("code")).toBeNull();
    await context.close();
  });
});
