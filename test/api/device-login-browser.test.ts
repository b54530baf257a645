// `aegis login` end to end, the way a person does it: the CLI (a child
// process) prints a code and a URL, a real browser (headless Chromium from
// Debian, driven by playwright-core) signs in and approves or denies, and
// the CLI gets its token, or reports the denial.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DeviceAuthService } from "../../gen/proto/aegis/device/v1/device_pb.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { launchChromium } from "../support/chromium.js";
import { type Actor, createActor } from "../support/fixtures.js";

const tsx = path.resolve("node_modules/.bin/tsx");
const main = path.resolve("src/cli/main.ts");
const password = "correct horse battery staple";

function aegis(args: string[], configDir: string) {
  const child: ChildProcess = spawn(tsx, [main, ...args], {
    env: { ...process.env, AEGIS_CONFIG_DIR: configDir, BROWSER: "none" },
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => (stdout += d));
  child.stderr?.on("data", (d) => (stderr += d));
  const exit = new Promise<number | null>((resolve) => child.on("exit", resolve));
  return {
    exit,
    stdout: () => stdout,
    stderr: () => stderr,
    url(): Promise<string> {
      return vi.waitFor(
        () => {
          const match = /\(or open (\S+)\)/.exec(stdout);
          if (!match) throw new Error(`no URL from aegis login: ${stdout} ${stderr}`);
          return match[1] as string;
        },
        { timeout: 30_000, interval: 50 },
      );
    },
  };
}

describe("aegis login with a real browser", () => {
  let t: TestBroker;
  let person: Actor;
  let clientId: string;
  let browser: Browser;

  beforeAll(async () => {
    t = await startTestBroker("pglite", { AEGIS_DEVICE_POLL_INTERVAL_S: "1" });
    person = await createActor(t, {
      name: "Alice Example",
      scopes: ["oauth_client.create", "account.password.set", "reports.read"],
    });
    const device = t.client(DeviceAuthService, { key: person.key });
    await device.setLocalPassword({ principalId: person.principalId, username: "alice", password });
    clientId =
      (await device.createOAuthClient({ name: "Aegis CLI", allowedScopes: ["reports.read"] })).client?.id ?? "";
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await t.stop();
  });

  async function signIn(url: string) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(url);
    await page.getByLabel("Username").fill("alice");
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Approve this device?" }).waitFor();
    return { context, page };
  }

  it("signs in, approves, and the CLI gets a DPoP-bound token it can use; logout forgets it", async () => {
    const configDir = mkdtempSync(path.join(tmpdir(), "aegis-login-"));
    const login = aegis(
      ["login", "--server", t.broker.url, "--client-id", clientId, "--scope", "reports.read"],
      configDir,
    );
    const { page, context } = await signIn(await login.url());
    const text = await page.locator("main").innerText();
    expect(text).toContain("Aegis CLI");
    expect(text).toContain("127.0.0.1");
    expect(text).toContain("reports.read");
    expect(text).toContain(t.broker.url);

    // The decision form only works with the session's CSRF token.
    const [session] = await context.cookies();
    const forged = await fetch(`${t.broker.url}/device/decide`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: `${session?.name}=${session?.value}` },
      body: new URLSearchParams({ csrf: "forged", user_code: "BBBB-BBBB", decision: "approve" }),
    });
    expect(forged.status).toBe(403);
    const noSession = await fetch(`${t.broker.url}/device/decide`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ csrf: "x", user_code: "BBBB-BBBB", decision: "approve" }),
    });
    expect(noSession.status).toBe(401);
    expect(session?.httpOnly).toBe(true);
    expect(session?.sameSite).toBe("Lax");

    await page.getByRole("button", { name: "Approve" }).click();
    await page.getByRole("heading", { name: "Device approved" }).waitFor();
    expect(await login.exit).toBe(0);
    expect(login.stdout()).toContain(`Logged in to ${t.broker.url}.`);
    expect(statSync(path.join(configDir, "credentials.json")).mode & 0o777).toBe(0o600);

    const whoami = aegis(["whoami"], configDir);
    expect(await whoami.exit).toBe(0);
    expect(whoami.stdout()).toContain(`Alice Example (${person.principalId})`);
    expect(whoami.stdout()).toContain("scopes: reports.read");

    // An expired access token is refreshed silently, and the rotated refresh token kept.
    // (One profile per server: credentials.json is { default, profiles: { <server>: session } }.)
    const file = path.join(configDir, "credentials.json");
    type Profiles = { default: string; profiles: Record<string, { expiresAt: number; refreshToken: string }> };
    const saved = JSON.parse(readFileSync(file, "utf8")) as Profiles;
    expect(saved.default).toBe(t.broker.url);
    const stored = saved.profiles[t.broker.url];
    expect(stored?.refreshToken).toBeTruthy();
    writeFileSync(file, JSON.stringify({ ...saved, profiles: { [t.broker.url]: { ...stored, expiresAt: 0 } } }));
    const refreshed = aegis(["whoami"], configDir);
    expect(await refreshed.exit).toBe(0);
    const rotated = (JSON.parse(readFileSync(file, "utf8")) as Profiles).profiles[t.broker.url];
    expect(rotated?.refreshToken).toBeTruthy();
    expect(rotated?.refreshToken).not.toBe(stored?.refreshToken);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const logout = aegis(["logout"], configDir);
    expect(await logout.exit).toBe(0);
    const family = await t.db.database.prisma.refreshToken.findMany({ where: { principalId: person.principalId } });
    expect(family.length).toBe(2);
    expect(family.every((r) => r.revokedAt !== null)).toBe(true);
    const after = aegis(["whoami"], configDir);
    expect(await after.exit).toBe(2);
    expect(after.stderr()).toContain("not signed in");
    await context.close();
  });

  it("reports access denied when the person denies", async () => {
    const configDir = mkdtempSync(path.join(tmpdir(), "aegis-login-"));
    const login = aegis(["login", "--server", t.broker.url, "--client-id", clientId], configDir);
    const { page, context } = await signIn(await login.url());
    await page.getByRole("button", { name: "Deny" }).click();
    await page.getByRole("heading", { name: "Request denied" }).waitFor();
    expect(await login.exit).toBe(1);
    expect(login.stderr()).toContain("access denied");
    await context.close();
  });

  it("refuses a wrong password and audits it", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${t.broker.url}/device`);
    await page.getByLabel("Username").fill("alice");
    await page.getByLabel("Password").fill("wrong password!");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("Wrong username or password.").waitFor();
    const denied = await t.db.database.prisma.auditEvent.count({
      where: { action: "device.login", outcome: "denied", reason: "WRONG_CREDENTIALS" },
    });
    expect(denied).toBeGreaterThan(0);
    await context.close();
  });
});
