// The device flow's verification page over the wire: what it shows the person
// approving is chosen by whoever registered the client and whoever runs the
// device (the client's name, the user agent, the audience, the scopes), so
// all of it must reach the browser as text, never as markup. And its cookies
// keep the attributes that keep them to this page. Its decision form is the
// page's face of ApproveDeviceAuthorization and DenyDeviceAuthorization, and
// refuses as they do, through the same pipeline step.
import { ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceAuthService } from "../../gen/proto/aegis/device/v1/device_pb.js";
import { GrantService } from "../../gen/proto/aegis/grant/v1/grant_pb.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { failure, reasonOf } from "../support/errors.js";
import { type Actor, createActor, registerApi } from "../support/fixtures.js";

const password = "correct horse battery staple";
// Element content and a broken-out quoted attribute.
const script = "<script>alert(1)</script>";
const breakout = `"><img src=x onerror=alert(2)>`;
// Space-free, as audiences and scopes are space-separated lists.
const audience = `https://api.example/'"><svg/onload=alert(3)>`;
const scope = `"><img/src=x/onerror=alert(4)>`;

describe("verification page", () => {
  let t: TestBroker;
  let person: Actor;
  let clientId: string;
  let apiId: string;
  let session: string;

  /** A Set-Cookie header as the browser sends the cookie back: `name=value`. */
  const sent = (setCookie = "") => setCookie.split(";")[0] ?? "";
  const get = (path: string, cookie = "") => fetch(`${t.broker.url}${path}`, { headers: { cookie } });

  /** Signs alice in the way the page's form does, and returns the Set-Cookie headers of both steps. */
  async function signIn(): Promise<{ loginForm: string[]; signedIn: string[] }> {
    const form = await get("/device");
    const loginForm = form.headers.getSetCookie();
    const loginCsrf = /name="login_csrf" value="([^"]+)"/.exec(await form.text())?.[1] ?? "";
    const signedIn = await fetch(`${t.broker.url}/device/login`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: sent(loginForm[0]) },
      body: new URLSearchParams({ login_csrf: loginCsrf, user_code: "", username: "alice", password }),
      redirect: "manual",
    });
    expect(signedIn.status).toBe(303);
    return { loginForm, signedIn: signedIn.headers.getSetCookie() };
  }

  beforeAll(async () => {
    t = await startTestBroker("pglite");
    person = await createActor(t, {
      scopes: ["oauth_client.create", "account.password.set", "resource_server.create", "grant.create"],
    });
    // Identifiers are free text without spaces: one can carry markup.
    apiId = (await registerApi(t, person.key, { identifier: audience, scopes: ["reports.read"] })).id;
    const device = t.client(DeviceAuthService, { key: person.key });
    await device.setLocalPassword({ principalId: person.principalId, username: "alice", password });
    const { client } = await device.createOAuthClient({
      name: `${script}${breakout}`,
      // The broker scopes it may ask for; a resource server's are bounded by its catalogue.
      allowedScopes: [],
      allowedAudiences: [audience],
    });
    clientId = client?.id ?? "";
    session = sent((await signIn()).signedIn[0]);
  });
  afterAll(() => t?.stop());

  it("shows a hostile client name, user agent, audience and scope as text on the approval page", async () => {
    const begun = await fetch(`${t.broker.url}/oauth/device_authorization`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", "user-agent": `${script}${breakout}` },
      body: new URLSearchParams({ client_id: clientId, scope: "reports.read", audience }),
    });
    const { user_code: userCode } = (await begun.json()) as { user_code: string };
    // Scope syntax is checked on the way in, so no request can carry markup
    // in a scope today; the page must not rely on that, so the stored row gets one.
    await t.db.database.prisma.deviceAuthorization.updateMany({
      where: { userCode: userCode.replace("-", "") },
      data: { scopes: `reports.read ${scope}` },
    });

    const page = await get(`/device?user_code=${userCode}`, session);
    expect(page.status).toBe(200);
    const body = await page.text();
    expect(body).toContain("<h1>Approve this device?</h1>");
    expect(body).not.toMatch(/<script|<img|<svg/i);
    const name = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt;";
    expect(body).toContain(`<strong>${name}</strong> asks to act as you.`);
    expect(body).toContain(`(${name})</dd>`);
    expect(body).toContain("<dd>https://api.example/&#39;&quot;&gt;&lt;svg/onload=alert(3)&gt;</dd>");
    const escapedScope = "&quot;&gt;&lt;img/src=x/onerror=alert(4)&gt;";
    expect(body).toContain(`<input type="checkbox" name="scope" value="${escapedScope}" id="scope1" checked>`);
    expect(body).toContain(`<code>${escapedScope}</code>`);
  });

  it("shows a hostile user code from the link as text in the sign-in form", async () => {
    // The page keeps at most 20 characters of the code.
    const page = await get(`/device?user_code=${encodeURIComponent(`"><script>alert(5)</script>`)}`);
    expect(page.status).toBe(200);
    const body = await page.text();
    expect(body).not.toMatch(/<script/i);
    expect(body).toContain(`name="user_code" value="&quot;&gt;&lt;script&gt;alert(5)&lt;/">`);
  });

  it("keeps its cookies from scripts, cross-site posts and other paths, for a bounded time", async () => {
    const attributesOf = (setCookie: string) =>
      setCookie
        .split(";")
        .slice(1)
        .map((a) => a.trim().toLowerCase())
        .sort();
    const { loginForm, signedIn } = await signIn();
    const [login] = loginForm;
    expect(login).toMatch(/^aegis_login=[0-9A-Za-z]{32};/);
    // Plain HTTP here: no Secure (the TLS test checks it is set there).
    expect(attributesOf(login ?? "")).toEqual(["httponly", "max-age=600", "path=/device", "samesite=lax"]);
    const [sessionCookie, cleared] = signedIn;
    expect(sessionCookie).toMatch(/^aegis_session=[0-9A-Za-z]{43};/);
    expect(attributesOf(sessionCookie ?? "")).toEqual(["httponly", "max-age=3600", "path=/device", "samesite=lax"]);
    expect(cleared).toMatch(/^aegis_login=;/);
    expect(attributesOf(cleared ?? "")).toEqual(["httponly", "max-age=0", "path=/device", "samesite=lax"]);
  });

  describe("the decision form, under ApproveDeviceAuthorization's and DenyDeviceAuthorization's policy", () => {
    /** The audit events of one request, by the request id the broker answered with. */
    const audited = (requestId: string | null | undefined) =>
      t.db.database.prisma.auditEvent.findMany({
        where: { requestId: requestId ?? "none" },
        select: { action: true, target: true, outcome: true, reason: true, actorId: true, tenantId: true },
      });
    const decide = (fields: Record<string, string | string[]>, cookie = session) => {
      const body = new URLSearchParams();
      for (const [name, value] of Object.entries(fields)) for (const v of [value].flat()) body.append(name, v);
      return fetch(`${t.broker.url}/device/decide`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", cookie },
        body,
      });
    };
    /** The session's CSRF token, from the code form it shows. */
    const csrf = async () =>
      /name="csrf" value="([^"]+)"/.exec(await (await get("/device", session)).text())?.[1] ?? "";
    const event = (action: string, reason: string, actor?: Actor) => ({
      action,
      target: "",
      outcome: "denied",
      reason,
      actorId: actor?.principalId ?? null,
      tenantId: actor?.tenantId ?? null,
    });

    it("refuses a post without a session as unauthenticated, audited once with the RPC's action", async () => {
      const res = await decide({ csrf: "x", user_code: "BBBB-BBBB", decision: "approve" }, "");
      expect(res.status).toBe(401);
      expect(await res.text()).toContain("Sign in first.");
      expect(await audited(res.headers.get("aegis-request-id"))).toEqual([event("device.approve", "NO_SESSION")]);
    });

    it("refuses a session without its CSRF token, audited with the person and the RPC's action", async () => {
      const res = await decide({ csrf: "forged", user_code: "BBBB-BBBB", decision: "deny" });
      expect(res.status).toBe(403);
      expect(await audited(res.headers.get("aegis-request-id"))).toEqual([
        event("device.deny", "CSRF_MISMATCH", person),
      ]);
    });

    it("refuses a wrong code as DenyDeviceAuthorization does, with the same audit event", async () => {
      const res = await decide({ csrf: await csrf(), user_code: "BBBB-BBBB", decision: "deny" });
      expect(res.status).toBe(404);
      expect(await res.text()).toContain("That code is not valid");
      const rpc = await failure(
        t.client(DeviceAuthService, { key: person.key }).denyDeviceAuthorization({ userCode: "BBBB-BBBB" }),
      );
      expect(reasonOf(rpc)).toBe("INVALID_USER_CODE");
      const [http] = await audited(res.headers.get("aegis-request-id"));
      expect(await audited(rpc?.metadata.get("aegis-request-id"))).toEqual([http]);
      expect(http).toEqual(event("device.deny", "INVALID_USER_CODE", person));
    });

    it("gives no scope when the person unticks every box and approves (through the RPC, none listed means all)", async () => {
      // The person holds the scope, so giving everything asked would succeed.
      const giver = await createActor(t, {
        tenantId: person.tenantId,
        scopes: ["grant.create", `resource_server.admin:server:${apiId}`],
      });
      await t
        .client(GrantService, { key: giver.key })
        .createGrant({ principalId: person.principalId, scope: "reports.read", resourceServerId: apiId });
      const begun = await fetch(`${t.broker.url}/oauth/device_authorization`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ client_id: clientId, scope: "reports.read", audience }),
      });
      const { user_code: userCode } = (await begun.json()) as { user_code: string };
      expect(await (await get(`/device?user_code=${userCode}`, session)).text()).toContain(
        'name="scope" value="reports.read"',
      );
      // Every box unticked: the browser sends no `scope` field at all.
      const res = await decide({ csrf: await csrf(), user_code: userCode, decision: "approve" });
      expect(res.status).toBe(200);
      const row = await t.db.database.prisma.deviceAuthorization.findFirstOrThrow({
        where: { userCode: userCode.replace("-", "") },
      });
      expect(row).toMatchObject({ status: "approved", approvedScopes: "" });
    });

    it("applies the RPC's request rules: at most 50 scopes", async () => {
      const scopes = Array.from({ length: 51 }, (_, i) => `reports.read${i}`);
      const res = await decide({ csrf: await csrf(), user_code: "BBBB-BBBB", decision: "approve", scope: scopes });
      expect(res.status).toBe(400);
      expect(await res.text()).toContain("scopes");
      const rpc = await failure(
        t.client(DeviceAuthService, { key: person.key }).approveDeviceAuthorization({ userCode: "BBBB-BBBB", scopes }),
      );
      expect(rpc).toBeInstanceOf(ConnectError);
      expect(reasonOf(rpc)).toBe("INVALID_ARGUMENT");
    });
  });
});
