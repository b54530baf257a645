// The developer portal in a real browser (Debian's Chromium through
// playwright-core): the ⌘K palette by keyboard alone and its speed, "Try it"
// anonymously, with a pasted API key, and with a DPoP proof signed by the
// page's own non-extractable key (CreateLease) and a decoded refusal, on
// each database; axe on every page is developer-portal-axe-browser.test.ts.
// Screenshots go to $TMPDIR/aegis-portal-screenshots.
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialService } from "../../gen/proto/aegis/credential/v1/credential_pb.js";
import { GrantService } from "../../gen/proto/aegis/grant/v1/grant_pb.js";
import { LeaseService } from "../../gen/proto/aegis/lease/v1/lease_pb.js";
import { sealCredential } from "../../src/sdk/index.js";
import { registerEncryptionKey, startAgent } from "../support/agents.js";
import type { TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { type Actor, createActor } from "../support/fixtures.js";
import { openPortal, type Portal, screenshots } from "../support/portal.js";

const ownerScopes = [
  "agent.register",
  "agent.key.add",
  "apikey.create",
  "grant.create",
  "credential.create:provider:gcp",
  "credential.lease.create:provider:gcp",
  "credential.lease.redeem:provider:gcp",
];

describe.each(databaseKinds)("developer portal in a browser on %s", (kind) => {
  let portal: Portal;
  let t: TestBroker;
  let person: Actor;
  let browser: Browser;

  beforeAll(async () => {
    portal = await openPortal(kind);
    ({ t, browser } = portal);
    person = await createActor(t, { name: "Alice Example", scopes: ownerScopes });
  }, 120_000);
  afterAll(async () => {
    await portal?.close();
  });

  /** A fresh page (fresh memory: no key, no token) that fails the test on any CSP violation or script error. */
  async function open(url: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error" && !/Failed to load resource/.test(m.text())) problems.push(m.text());
    });
    page.on("pageerror", (e) => problems.push(String(e)));
    await page.goto(`${t.broker.url}${url}`);
    (page as Page & { problems?: string[] }).problems = problems;
    return page;
  }
  const problemsOf = (page: Page) => (page as Page & { problems?: string[] }).problems ?? [];
  const opPath = (service: string, method: string) => `/developer/api/${service}/${method}`;

  it("⌘K finds 'redeem' → RedeemLease, Enter opens it, Esc closes; each keystroke reports its search time", async () => {
    const page = await open("/developer");
    await page.getByRole("heading", { name: "Build on Aegis" }).waitFor();
    await page.keyboard.press("Control+K");
    const dialog = page.getByRole("dialog", { name: "Search guides and operations" });
    await dialog.waitFor();
    await page.locator("#palette-results[data-ready]").waitFor();
    const box = page.getByRole("combobox", { name: "Search guides and operations" });
    expect(await box.evaluate((el) => el === document.activeElement)).toBe(true);
    const timings: number[] = [];
    for (const query of ["redeem"]) {
      await box.fill("");
      for (const ch of query) {
        await page.keyboard.type(ch);
        timings.push(Number(await page.locator("#palette-results").getAttribute("data-ms")));
      }
      if (query === "redeem") {
        const first = page.getByRole("option").first();
        expect(await first.innerText()).toContain("RedeemLease");
        expect(await first.getAttribute("aria-selected")).toBe("true");
        expect(await page.getByRole("group", { name: "Operations" }).count()).toBe(1);
        await page.screenshot({ path: path.join(screenshots, "palette.png") });
        // Moving down and back up by keyboard keeps one selected option.
        await page.keyboard.press("ArrowDown");
        await page.keyboard.press("ArrowUp");
        expect(await page.locator('[role="option"][aria-selected="true"]').innerText()).toContain("RedeemLease");
        break;
      }
    }
    await page.keyboard.press("Enter");
    await page.waitForURL(`**${opPath("aegis.lease.v1.LeaseService", "RedeemLease")}`);
    await page.getByRole("heading", { level: 1, name: "RedeemLease" }).waitFor();

    await page.keyboard.press("Control+K");
    await dialog.waitFor();
    for (const query of ["lease token", "dpop", "selector grammar"]) {
      await box.fill("");
      for (const ch of query) {
        await page.keyboard.type(ch);
        timings.push(Number(await page.locator("#palette-results").getAttribute("data-ms")));
      }
      expect(await page.getByRole("option").count(), query).toBeGreaterThan(0);
    }
    expect(await page.getByRole("group", { name: "Guides" }).count()).toBe(1);
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden" });
    // Focus goes back to the search button (the palette restores it as it closes).
    await page.waitForFunction(() => document.activeElement?.id === "search-open", undefined, { timeout: 5_000 });
    // Each keystroke's search reports its time; how fast it is, `npm run
    // bench` measures (test/bench/portal-search.ts): a speed is never a test.
    expect(timings.length).toBeGreaterThan(20);
    expect(timings.every((ms) => Number.isFinite(ms) && ms >= 0)).toBe(true);
    expect(problemsOf(page)).toEqual([]);
  }, 120_000);

  it("tries GetJwks anonymously and shows the response, headers and timing", async () => {
    const page = await open(opPath("aegis.token.v1.TokenService", "GetJwks"));
    await page.getByRole("button", { name: "Send" }).click();
    await page.locator("#result-status.status-ok").waitFor();
    expect(await page.locator("#result-status").innerText()).toMatch(/^OK in \d+ ms$/);
    const body = JSON.parse(await page.locator("#result-body").innerText()) as { keys: { kid: string }[] };
    expect(body.keys.length).toBeGreaterThan(0);
    expect(await page.locator("#result-headers").innerText()).toContain("aegis-request-id");
    // The same over gRPC-Web.
    await page.getByLabel("Protocol").selectOption("grpc-web");
    await page.getByRole("button", { name: "Send" }).click();
    await page.locator("#result-status.status-ok").waitFor();
    expect(await page.locator("#result-headers").innerText()).toContain("grpc-status: 0");
    await page.screenshot({ path: path.join(screenshots, "getjwks.png"), fullPage: false });
    expect(problemsOf(page)).toEqual([]);
  });

  it("tries WhoAmI with a pasted API key", async () => {
    const page = await open(opPath("aegis.principal.v1.PrincipalService", "WhoAmI"));
    await page.getByLabel("API key or user API token").fill(person.key);
    expect(await page.getByLabel("Send as").inputValue()).toBe("api-key");
    await page.getByRole("button", { name: "Send" }).click();
    await page.locator("#result-status.status-ok").waitFor();
    const body = await page.locator("#result-body").innerText();
    expect(body).toContain(person.principalId);
    expect(body).toContain("Alice Example");
    // The key lives in memory only.
    expect(await page.evaluate(() => localStorage.length + sessionStorage.length)).toBe(0);
    expect(problemsOf(page)).toEqual([]);
  });

  it("shows a decoded permission_denied reason for a missing grant, and field violations for bad input", async () => {
    const nobody = await createActor(t, { tenantId: person.tenantId, name: "No grants" });
    const page = await open(opPath("aegis.agent.v1.AgentService", "ListAgents"));
    await page.getByLabel("API key or user API token").fill(nobody.key);
    await page.getByRole("button", { name: "Send" }).click();
    await page.locator("#result-status.status-error").waitFor();
    expect(await page.locator('dd[data-term="code"]').innerText()).toBe("permission_denied");
    expect(await page.locator('dd[data-term="reason"]').innerText()).toBe("MISSING_GRANT");
    expect(await page.locator('dd[data-term="metadata action"]').innerText()).toBe("agent.list");
    await page.screenshot({ path: path.join(screenshots, "permission-denied.png") });

    const bad = await open(opPath("aegis.agent.v1.AgentService", "RegisterAgent"));
    await bad.getByLabel("API key or user API token").fill(person.key);
    await bad.getByLabel("Request (JSON)").fill(JSON.stringify({ displayName: "" }));
    await bad.getByRole("button", { name: "Send" }).click();
    await bad.locator("#result-status.status-error").waitFor();
    expect(await bad.locator('dd[data-term="code"]').innerText()).toBe("invalid_argument");
    expect(await bad.locator("table.violations").innerText()).toContain("display_name");
    expect(problemsOf(page)).toEqual([]);
  });

  it("tries CreateLease with a DPoP-bound token minted in the page and a proof signed by the page's key", async () => {
    const target = { provider: "gcp", app: "billing-portal", account: "deploy-bot" };
    const selector = `provider:gcp:app:${target.app}:account:deploy-bot`;
    const agent = await startAgent(t, person.key, []);
    const grants = t.client(GrantService, { key: person.key });
    await grants.createGrant({ principalId: agent.agentId, scope: `credential.lease.create:${selector}` });
    const mine = await registerEncryptionKey(t, person.key, person.principalId, "P-256");
    const sealed = await sealCredential("sk-live-portal", [
      { kid: mine.kid, jwk: mine.publicJwk },
      { kid: agent.encryption.kid, jwk: agent.encryption.publicJwk },
    ]);
    await t.client(CredentialService, { key: person.key }).registerCredential({
      target,
      displayName: "billing deploy key",
      sealedJwe: sealed,
    });

    const page = await open(opPath("aegis.lease.v1.LeaseService", "CreateLease"));
    await page.locator("#dpop-key", { hasText: "thumbprint" }).waitFor();
    const jkt = (await page.locator("#dpop-key").innerText()).replace("thumbprint ", "");
    await page.getByLabel("API key or user API token").fill(agent.apiKey);
    await page.getByText("Get a DPoP-bound token with the API key").click();
    await page.getByLabel("Scopes (space separated)").fill(`credential.lease.create:${selector}`);
    await page.getByRole("button", { name: "Mint DPoP-bound token" }).click();
    await page.locator("#token-state", { hasText: "DPoP token" }).waitFor();
    expect(await page.getByLabel("Send as").inputValue()).toBe("token");
    expect(await page.getByLabel("Attach a DPoP proof").isChecked()).toBe(true);
    await page.getByLabel("Request (JSON)").fill(JSON.stringify({ target }));
    await page.getByRole("button", { name: "Send" }).click();
    await page.locator("#result-status.status-ok").waitFor();
    const body = JSON.parse(await page.locator("#result-body").innerText()) as {
      lease: { id: string; holderJkt: string; state: string };
    };
    expect(body.lease.holderJkt).toBe(jkt);
    expect(body.lease.state).toBe("LEASE_STATE_ACTIVE");
    // The broker really holds it, bound to the page's key.
    const lease = await t.db.database.prisma.lease.findUnique({ where: { id: body.lease.id } });
    expect(lease?.holderJkt ?? "").toBe(jkt);
    await page.screenshot({ path: path.join(screenshots, "create-lease.png"), fullPage: true });

    // Without the proof the same call is refused, and the reason is shown.
    await page.getByLabel("Attach a DPoP proof").uncheck();
    await page.getByLabel("Send as").selectOption("api-key");
    await page.getByRole("button", { name: "Send" }).click();
    await page.locator("#result-status.status-error").waitFor();
    expect(await page.locator('dd[data-term="code"]').innerText()).toMatch(/permission_denied|unauthenticated/);
    expect(problemsOf(page)).toEqual([]);
    void LeaseService;
  });
});
