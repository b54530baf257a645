// Signing in from the developer portal in a real browser (Debian's Chromium
// through playwright-core): the portal's "Sign in" runs authorization code
// + PKCE (S256) as the public client `aegis-developer-portal` in a pop-up,
// the person signs in and allows on the broker's pages, the callback hands
// the response to the portal page, which checks state and iss and redeems
// the code with a DPoP proof of its own key; then WhoAmI is tried with the
// DPoP-bound token held in the page's memory only. Needs the authorization
// endpoint (GET /oauth/authorize, the authorization_code grant).
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialService } from "../../gen/proto/aegis/credential/v1/credential_pb.js";
import { DeviceAuthService } from "../../gen/proto/aegis/device/v1/device_pb.js";
import { sealCredential } from "../../src/sdk/index.js";
import { registerEncryptionKey } from "../support/agents.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { launchChromium } from "../support/chromium.js";
import { databaseKinds } from "../support/databases.js";
import { type Actor, createActor } from "../support/fixtures.js";

const password = "correct horse battery staple";

/**
 * Resolves when `popup` has closed. Listen before the click that closes it:
 * the pop-up can close before the click returns, and a "close" listener
 * attached after the event waits forever (a CI run timed out so, under load).
 */
function closing(popup: Page): Promise<unknown> {
  return popup.isClosed() ? Promise.resolve() : popup.waitForEvent("close");
}

/** Alice signs in and allows in the broker's pop-up; the portal page then holds a DPoP-bound token. */
async function signInInPopup(popup: Page, page: Page): Promise<void> {
  await popup.getByLabel("Username").fill("alice");
  await popup.getByLabel("Password").fill(password);
  await popup.getByRole("button", { name: "Sign in" }).click();
  const closed = closing(popup);
  await popup.getByRole("button", { name: "Allow" }).click();
  await closed;
  await page.locator("#session-status", { hasText: "Signed in" }).waitFor();
  await page.locator("#token-state", { hasText: "DPoP token" }).waitFor();
}

describe.each(databaseKinds)("signing in from the developer portal on %s", (kind) => {
  let t: TestBroker;
  let person: Actor;
  let browser: Browser;

  beforeAll(async () => {
    t = await startTestBroker(kind);
    person = await createActor(t, {
      name: "Alice Example",
      scopes: [
        "account.password.set",
        "principal.whoami",
        "agent.key.add",
        "credential.create:provider:gcp",
        "credential.lease.create:provider:gcp",
      ],
    });
    await t.client(DeviceAuthService, { key: person.key }).setLocalPassword({
      principalId: person.principalId,
      username: "alice",
      password,
    });
    browser = await launchChromium();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  it("signs in with code + PKCE in a pop-up, gets a DPoP-bound token, and tries WhoAmI with it", async () => {
    const metadata = (await (await fetch(`${t.broker.url}/.well-known/oauth-authorization-server`)).json()) as {
      authorization_endpoint?: string;
    };
    expect(metadata.authorization_endpoint).toBe(`${t.broker.url}/oauth/authorize`);
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${t.broker.url}/developer/api/aegis.principal.v1.PrincipalService/WhoAmI`);
    const [popup] = await Promise.all([
      page.waitForEvent("popup"),
      page.getByRole("button", { name: "Sign in" }).click(),
    ]);
    const authorize = new URL(popup.url());
    expect(authorize.pathname).toBe("/oauth/authorize");
    expect(authorize.searchParams.get("client_id")).toBe("aegis-developer-portal");
    expect(authorize.searchParams.get("redirect_uri")).toBe(`${t.broker.url}/developer/callback`);
    expect(authorize.searchParams.get("code_challenge_method")).toBe("S256");
    expect(authorize.searchParams.get("state")?.length).toBeGreaterThanOrEqual(43);
    await signInInPopup(popup, page);
    await page.getByRole("button", { name: "Send" }).click();
    await page.locator("#result-status.status-ok").waitFor();
    expect(await page.locator("#result-body").innerText()).toContain(person.principalId);
    expect(await page.evaluate(() => localStorage.length + sessionStorage.length)).toBe(0);
    await context.close();
  });

  it("signs in from the CreateLease page asking for the request's target scope, and creates a lease bound to the page's key", async () => {
    const target = { provider: "gcp", app: "billing-portal", account: "deploy-bot" };
    const scope = "credential.lease.create:provider:gcp:app:billing-portal:account:deploy-bot";
    const mine = await registerEncryptionKey(t, person.key, person.principalId, "P-256");
    await t.client(CredentialService, { key: person.key }).registerCredential({
      target,
      displayName: "billing deploy key",
      sealedJwe: await sealCredential("sk-live-portal", [{ kid: mine.kid, jwk: mine.publicJwk }]),
    });
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${t.broker.url}/developer/api/aegis.lease.v1.LeaseService/CreateLease`);
    await page.locator("#dpop-key", { hasText: "thumbprint" }).waitFor();
    const jkt = (await page.locator("#dpop-key").innerText()).replace("thumbprint ", "");
    // The Scopes field follows the request's target: exactly the scope the call needs.
    await page.getByLabel("Request (JSON)").fill(JSON.stringify({ target }));
    expect(await page.getByLabel("Scopes (space separated)").inputValue()).toBe(scope);
    const [popup] = await Promise.all([
      page.waitForEvent("popup"),
      page.getByRole("button", { name: "Sign in" }).click(),
    ]);
    expect(new URL(popup.url()).searchParams.get("scope")).toBe(scope);
    await signInInPopup(popup, page);
    expect(await page.getByLabel("Attach a DPoP proof").isChecked()).toBe(true);
    await page.getByRole("button", { name: "Send" }).click();
    await page.locator("#result-status.status-ok").waitFor();
    const body = JSON.parse(await page.locator("#result-body").innerText()) as {
      lease: { id: string; holderJkt: string; holderId: string };
    };
    expect(body.lease.holderJkt).toBe(jkt);
    expect(body.lease.holderId).toBe(person.principalId);
    const lease = await t.db.database.prisma.lease.findUnique({ where: { id: body.lease.id } });
    expect(lease?.holderJkt ?? "").toBe(jkt);
    await context.close();
  });

  it("says clearly when the broker refuses the scopes asked for (invalid_scope)", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${t.broker.url}/developer/api/aegis.lease.v1.LeaseService/CreateLease`);
    await page.getByLabel("Scopes (space separated)").fill("credential.lease.create");
    const [popup] = await Promise.all([
      page.waitForEvent("popup"),
      page.getByRole("button", { name: "Sign in" }).click(),
    ]);
    await Promise.race([closing(popup), popup.getByLabel("Username").waitFor()]);
    if (!popup.isClosed()) {
      await popup.getByLabel("Username").fill("alice");
      await popup.getByLabel("Password").fill(password);
      const closed = closing(popup);
      await popup.getByRole("button", { name: "Sign in" }).click();
      await closed;
    }
    await page.locator("#session-status", { hasText: "invalid_scope" }).waitFor();
    expect(await page.locator("#session-status").innerText()).toContain("Check the Scopes field");
    await context.close();
  });

  it("refuses a callback whose state is not the one it sent", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${t.broker.url}/developer/api/aegis.principal.v1.PrincipalService/WhoAmI`);
    const [popup] = await Promise.all([
      page.waitForEvent("popup"),
      page.getByRole("button", { name: "Sign in" }).click(),
    ]);
    // A forged response: right origin, wrong state. The callback page relays
    // whatever it gets and closes itself, so the navigation never reaches
    // "load": wait for the response to arrive and for the pop-up to close.
    await Promise.all([
      closing(popup),
      popup.goto(
        `${t.broker.url}/developer/callback?code=forged&state=forged&iss=${encodeURIComponent(t.broker.url)}`,
        {
          waitUntil: "commit",
        },
      ),
    ]);
    await page.locator("#session-status", { hasText: "state does not match" }).waitFor();
    expect(await page.locator("#token-state").innerText()).toBe("none");
    await context.close();
  });
});
