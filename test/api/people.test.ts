// People and tenant onboarding over the wire: an admin adds a person, the
// person enrolls with their one-time code on /enroll, signs in on /device
// and approves a device login; codes are single use and expire; suspension
// ends what the person was issued; narrowed credentials cannot onboard,
// re-enroll, suspend, reactivate or remove someone more privileged, and a
// code ends when its person is given grants; tenants cannot see each other's
// people; a tenant made with CreateTenant is usable through the API alone;
// wrong passwords slow the account down without locking it.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentService } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { ApiKeyService } from "../../gen/proto/aegis/apikey/v1/apikey_pb.js";
import { DeviceAuthService } from "../../gen/proto/aegis/device/v1/device_pb.js";
import { GrantService } from "../../gen/proto/aegis/grant/v1/grant_pb.js";
import { KeyService, KeySpec } from "../../gen/proto/aegis/kms/v1/kms_pb.js";
import { PersonService, PersonStatus } from "../../gen/proto/aegis/person/v1/person_pb.js";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { ResourceServerService } from "../../gen/proto/aegis/resourceserver/v1/resource_server_pb.js";
import { RoleService } from "../../gen/proto/aegis/role/v1/role_pb.js";
import { TenantService } from "../../gen/proto/aegis/tenant/v1/tenant_pb.js";
import { TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import { services } from "../../src/app/modules.js";
import { tenantAdminScopes } from "../../src/policy/admin-scopes.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { failure, reasonOf } from "../support/errors.js";
import { type Actor, createActor } from "../support/fixtures.js";

const password = "correct horse battery staple";
const adminScopes = [
  "person.create",
  "person.read",
  "person.list",
  "person.update",
  "person.suspend",
  "person.reactivate",
  "person.remove",
  "person.enrollment.issue",
  "apikey.create",
  "agent.register",
  "oauth_client.create",
  "token.user.create",
  "reports.read",
];

describe.each(databaseKinds)("people on %s", (kind) => {
  let t: TestBroker;
  let admin: Actor;
  let clientId: string;

  beforeAll(async () => {
    // Many wrong passwords on purpose: keep the shared per-address limit out of the way.
    t = await startTestBroker(kind, { AEGIS_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: "10000" });
    admin = await createActor(t, { scopes: adminScopes, name: "Tenant admin" });
    const { client } = await t.client(DeviceAuthService, { key: admin.key }).createOAuthClient({
      name: "people test CLI",
      allowedScopes: ["reports.read"],
    });
    clientId = client?.id ?? "";
  });
  afterAll(() => t?.stop());

  const people = (key: string | undefined = admin.key) => t.client(PersonService, { key });
  const url = (path: string) => `${t.broker.url}${path}`;
  const sent = (setCookie = "") => setCookie.split(";")[0] ?? "";
  const post = (path: string, body: Record<string, string>, cookie = "") =>
    fetch(url(path), {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie },
      body: new URLSearchParams(body),
      redirect: "manual",
    });

  /** Enrolls on the page the way a browser does: the form, then the post. */
  async function enroll(code: string, newPassword = password) {
    const form = await fetch(url(`/enroll?code=${encodeURIComponent(code)}`));
    const html = await form.text();
    expect(html).toContain(`value="${code}"`);
    const csrf = /name="enroll_csrf" value="([^"]+)"/.exec(html)?.[1] ?? "";
    return post(
      "/enroll",
      { enroll_csrf: csrf, code, password: newPassword, confirm: newPassword },
      sent(form.headers.getSetCookie()[0]),
    );
  }

  /** Signs in on /device; returns the response and the session cookie (empty unless it worked). */
  async function signIn(username: string, tenant = "", secret = password) {
    const form = await fetch(url("/device"));
    const csrf = /name="login_csrf" value="([^"]+)"/.exec(await form.text())?.[1] ?? "";
    const response = await post(
      "/device/login",
      { login_csrf: csrf, user_code: "", username, tenant, password: secret },
      sent(form.headers.getSetCookie()[0]),
    );
    const session = response.status === 303 ? sent(response.headers.getSetCookie()[0]) : "";
    return { response, session };
  }

  /** A device login with `client`, approved on the page by the signed-in `session`; the token response. */
  async function deviceLogin(session: string, client = clientId, scope = "reports.read") {
    const begun = (await (await post("/oauth/device_authorization", { client_id: client, scope })).json()) as {
      device_code: string;
      user_code: string;
    };
    const approval = await (
      await fetch(url(`/device?user_code=${begun.user_code}`), { headers: { cookie: session } })
    ).text();
    expect(approval).toContain("<h1>Approve this device?</h1>");
    const csrf = /name="csrf" value="([^"]+)"/.exec(approval)?.[1] ?? "";
    const scopes = [...approval.matchAll(/name="scope" value="([^"]+)"/g)].map((m) => m[1] ?? "");
    const body = new URLSearchParams({ csrf, user_code: begun.user_code, decision: "approve" });
    for (const s of scopes) body.append("scope", s);
    const decided = await fetch(url("/device/decide"), {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: session },
      body,
    });
    expect(decided.status).toBe(200);
    const token = await post("/oauth/token", {
      grant_type: "urn:ietf:params:oauth:grant-type:device_code",
      client_id: client,
      device_code: begun.device_code,
    });
    return (await token.json()) as { access_token?: string; refresh_token?: string; error?: string };
  }

  /** A new person with a password, signed in. */
  async function enrolledPerson(username: string, scopes = ["reports.read"]) {
    const created = await people().createPerson({ displayName: username, username, scopes });
    expect((await enroll(created.enrollment?.code ?? "")).status).toBe(200);
    const { session } = await signIn(username);
    expect(session).toMatch(/^aegis_session=/);
    return { id: created.person?.id ?? "", session };
  }

  it("adds a person who enrolls with the code, signs in on /device and approves a device login", async () => {
    const created = await people().createPerson({ displayName: "Bob", username: "Bob", scopes: ["reports.read"] });
    expect(created.person).toMatchObject({
      tenantId: admin.tenantId,
      displayName: "Bob",
      username: "bob",
      status: PersonStatus.ACTIVE,
      enrolled: false,
      scopes: ["reports.read"],
    });
    const code = created.enrollment?.code ?? "";
    expect(code).toMatch(/^aegis_en_/);
    expect(created.enrollment?.enrollmentUri).toBe(url("/enroll"));
    expect(created.enrollment?.enrollmentUriComplete).toBe(url(`/enroll?code=${code}`));
    // 72 hours by default.
    const expires = Number(created.enrollment?.expireTime?.seconds ?? 0n) * 1000;
    expect(Math.abs(expires - t.clock.now().getTime() - 72 * 3_600_000)).toBeLessThan(10_000);
    // Stored only as a keyed hash.
    const row = await t.db.database.prisma.enrollment.findFirstOrThrow({ where: { principalId: created.person?.id } });
    expect(JSON.stringify(row)).not.toContain(code.slice(26));

    const enrolled = await enroll(code);
    expect(enrolled.status).toBe(200);
    expect(await enrolled.text()).toContain("<code>bob</code>");
    expect((await people().getPerson({ personId: created.person?.id ?? "" })).person?.enrolled).toBe(true);

    const { session } = await signIn("bob");
    const tokens = await deviceLogin(session);
    expect(tokens.access_token).toBeTruthy();
    const me = await t.client(PrincipalService, { key: tokens.access_token }).whoAmI({});
    expect(me.principal?.id).toBe(created.person?.id);
    expect(me.scopes).toEqual(["reports.read"]);
  });

  it("takes each enrollment code once, and not after it expired or was replaced", async () => {
    const created = await people().createPerson({ displayName: "Carol", email: "Carol@Example.com" });
    expect(created.person?.email).toBe("carol@example.com");
    const code = created.enrollment?.code ?? "";
    expect((await enroll(code)).status).toBe(200);
    const again = await enroll(code, "another long password");
    expect(again.status).toBe(403);
    expect(await again.text()).toContain("That code is not valid");
    // The first password stands; the email is the sign-in name.
    expect((await signIn("carol@example.com", "", "another long password")).response.status).toBe(401);
    expect((await signIn("carol@example.com")).response.status).toBe(303);

    const personId = created.person?.id ?? "";
    const first = (await people().issueEnrollment({ personId })).enrollment?.code ?? "";
    const second = (await people().issueEnrollment({ personId })).enrollment?.code ?? "";
    expect((await enroll(first)).status).toBe(403); // replaced by the second
    t.clock.advance(72 * 3_600_000 + 1_000);
    expect((await enroll(second)).status).toBe(403); // expired
    const refusals = await t.db.database.prisma.auditEvent.findMany({
      where: { action: "person.enroll", outcome: "denied" },
      orderBy: { seq: "asc" },
    });
    expect(refusals.map((e) => e.reason).join("\n")).toMatch(/already used[\s\S]*replaced[\s\S]*expired/);
  });

  it("ends a suspended person's tokens, refresh tokens and session, and bars their API keys", async () => {
    const { id, session } = await enrolledPerson("dave");
    const tokens = await deviceLogin(session);
    const { secret: apiKey } = await t.client(ApiKeyService, { key: admin.key }).createApiKey({ principalId: id });
    const personToken = t.client(PrincipalService, { key: tokens.access_token });
    expect((await personToken.whoAmI({})).principal?.id).toBe(id);
    expect((await t.client(PrincipalService, { key: apiKey }).whoAmI({})).principal?.id).toBe(id);

    const suspended = await people().suspendPerson({ personId: id });
    expect(suspended.person?.status).toBe(PersonStatus.SUSPENDED);
    expect((await failure(personToken.whoAmI({})))?.code).toBe(Code.Unauthenticated);
    expect((await failure(t.client(PrincipalService, { key: apiKey }).whoAmI({})))?.code).toBe(Code.Unauthenticated);
    const refreshed = await post("/oauth/token", {
      grant_type: "refresh_token",
      client_id: clientId,
      refresh_token: tokens.refresh_token ?? "",
    });
    expect(((await refreshed.json()) as { error: string }).error).toBe("invalid_grant");
    expect(await (await fetch(url("/device"), { headers: { cookie: session } })).text()).toContain('name="login_csrf"');
    expect((await signIn("dave")).response.status).toBe(401);

    // Reactivated: the API key works again; the session and refresh token stay ended.
    await people().reactivatePerson({ personId: id });
    expect((await t.client(PrincipalService, { key: apiKey }).whoAmI({})).principal?.id).toBe(id);
    const again = await post("/oauth/token", {
      grant_type: "refresh_token",
      client_id: clientId,
      refresh_token: tokens.refresh_token ?? "",
    });
    expect(again.status).toBe(400);

    // Removed: for good, and the username is free again.
    const removed = await people().removePerson({ personId: id });
    expect(removed.person).toMatchObject({ status: PersonStatus.REMOVED, username: "", enrolled: false });
    expect((await failure(t.client(PrincipalService, { key: apiKey }).whoAmI({})))?.code).toBe(Code.Unauthenticated);
    expect(reasonOf(await failure(people().reactivatePerson({ personId: id })))).toBe("INVALID_TRANSITION");
    const reused = await people().createPerson({ displayName: "Another Dave", username: "dave" });
    expect(reused.person?.username).toBe("dave");
  });

  it("takes no code that suspension ended, even once the person is reactivated", async () => {
    const created = await people().createPerson({ displayName: "Judy", username: "judy" });
    const personId = created.person?.id ?? "";
    const replaced = created.enrollment?.code ?? "";
    const open = (await people().issueEnrollment({ personId })).enrollment?.code ?? "";
    expect((await enroll(replaced)).status).toBe(403);
    await people().suspendPerson({ personId });
    expect((await enroll(open)).status).toBe(403);
    await people().reactivatePerson({ personId });
    expect((await enroll(open)).status).toBe(403);
    const fresh = (await people().issueEnrollment({ personId })).enrollment?.code ?? "";
    expect((await enroll(fresh)).status).toBe(200);
    expect((await enroll(fresh, "another long password")).status).toBe(403);
  });

  it("suspends, reactivates and removes a person only with a credential that covers all they hold", async () => {
    // Three people holding all the admin holds, one for each status change.
    const victims = {
      suspendPerson: await createActor(t, { tenantId: admin.tenantId, scopes: adminScopes }),
      reactivatePerson: await createActor(t, { tenantId: admin.tenantId, scopes: adminScopes }),
      removePerson: await createActor(t, { tenantId: admin.tenantId, scopes: adminScopes }),
    };
    await people().suspendPerson({ personId: victims.reactivatePerson.principalId });
    const actions = {
      suspendPerson: "person.suspend",
      reactivatePerson: "person.reactivate",
      removePerson: "person.remove",
    } as const;
    for (const [change, action] of Object.entries(actions) as [keyof typeof actions, string][]) {
      const victim = victims[change];
      const before = (await people().getPerson({ personId: victim.principalId })).person?.status;
      // A helpdesk principal holding that one action, and the admin's own token narrowed to it.
      const helpdesk = await createActor(t, { tenantId: admin.tenantId, scopes: [action], name: "helpdesk" });
      const { secret: narrow } = await t
        .client(TokenService, { key: admin.key })
        .mintUserApiToken({ scopes: [action], label: `only ${action}` });
      for (const key of [helpdesk.key, narrow]) {
        const error = await failure(people(key)[change]({ personId: victim.principalId }));
        expect([change, error?.code, reasonOf(error)]).toEqual([change, Code.PermissionDenied, "SCOPE_ESCALATION"]);
      }
      expect((await people().getPerson({ personId: victim.principalId })).person?.status).toBe(before);
      const key = await t.db.database.prisma.apiKey.findUniqueOrThrow({ where: { id: victim.keyId } });
      expect(key.revokedAt).toBeNull();
      const denied = await t.db.database.prisma.auditEvent.findFirst({
        where: { actorId: helpdesk.principalId, target: victim.principalId, outcome: "denied" },
      });
      expect(denied?.reason).toMatch(/^SCOPE_ESCALATION/);
    }
    // Holding the action and what the person holds is enough: the admin's own flow.
    const covered = await createActor(t, { tenantId: admin.tenantId, scopes: ["person.suspend", "reports.read"] });
    const reader = await createActor(t, { tenantId: admin.tenantId, scopes: ["reports.read"] });
    const suspended = await people(covered.key).suspendPerson({ personId: reader.principalId });
    expect(suspended.person?.status).toBe(PersonStatus.SUSPENDED);
  });

  it("ends a person's open code when they are given grants, so a narrow issuer's code unlocks none", async () => {
    // A helpdesk holding only the onboarding actions adds people with no grants and keeps their codes.
    const helpdesk = await createActor(t, {
      tenantId: admin.tenantId,
      scopes: ["person.create", "person.enrollment.issue"],
      name: "helpdesk",
    });
    const tenantAdmin = await createActor(t, { tenantId: admin.tenantId, scopes: tenantAdminScopes(services) });
    const hire = async (username: string) => {
      const created = await people(helpdesk.key).createPerson({ displayName: username, username, scopes: [] });
      return { personId: created.person?.id ?? "", code: created.enrollment?.code ?? "" };
    };
    const promoted = await hire("new-admin");
    const granted = await hire("new-reader");
    // The real admin then gives them grants: a role, and a grant.
    await t
      .client(RoleService, { key: tenantAdmin.key })
      .assignRole({ principalId: promoted.personId, roleId: "tenant_admin" });
    await t
      .client(GrantService, { key: tenantAdmin.key })
      .createGrant({ principalId: granted.personId, scope: "agent.read" });
    for (const { personId, code } of [promoted, granted]) {
      expect((await enroll(code)).status).toBe(403);
      expect(await t.db.database.prisma.localAccount.count({ where: { principalId: personId } })).toBe(0);
      const row = await t.db.database.prisma.enrollment.findFirstOrThrow({ where: { principalId: personId } });
      expect(row.revokedAt).not.toBeNull();
    }
    // The helpdesk cannot issue another now; the admin, who covers the grants, can.
    for (const { personId } of [promoted, granted]) {
      const reissued = await failure(people(helpdesk.key).issueEnrollment({ personId }));
      expect(reasonOf(reissued)).toBe("SCOPE_ESCALATION");
      const code = (await people(tenantAdmin.key).issueEnrollment({ personId })).enrollment?.code ?? "";
      expect((await enroll(code)).status).toBe(200);
    }
  });

  it("ends a person's open code when creating a key or a resource server gives them its admin rights", async () => {
    const tenantAdmin = await createActor(t, { tenantId: admin.tenantId, scopes: tenantAdminScopes(services) });
    const creators: { username: string; create: (key: string) => Promise<unknown> }[] = [
      {
        username: "key-maker",
        create: (key) => t.client(KeyService, { key }).createKey({ spec: KeySpec.AES_256 }),
      },
      {
        username: "api-maker",
        create: (key) =>
          t.client(ResourceServerService, { key }).createResourceServer({
            identifier: "https://api.key-maker.example",
            displayName: "Maker API",
            scopes: [{ name: "orders:read" }],
          }),
      },
    ];
    for (const { username, create } of creators) {
      // A person with an open code, who meanwhile also has an API key and the right to create.
      const created = await people(tenantAdmin.key).createPerson({
        displayName: username,
        username,
        scopes: ["kms.key.create", "resource_server.create"],
      });
      const personId = created.person?.id ?? "";
      const { secret } = await t
        .client(ApiKeyService, { key: tenantAdmin.key })
        .createApiKey({ principalId: personId });
      await create(secret);
      const row = await t.db.database.prisma.enrollment.findFirstOrThrow({ where: { principalId: personId } });
      expect(row.revokedAt, username).not.toBeNull();
      expect((await enroll(created.enrollment?.code ?? "")).status).toBe(403);
    }
  });

  it("keeps usernames unique per tenant and refuses a person without a name", async () => {
    await people().createPerson({ displayName: "Erin", username: "erin" });
    const taken = await failure(people().createPerson({ displayName: "Erin 2", username: "ERIN" }));
    expect(taken?.code).toBe(Code.AlreadyExists);
    expect(reasonOf(taken)).toBe("USERNAME_TAKEN");
    const elsewhere = await createActor(t, { scopes: ["person.create"] });
    expect((await people(elsewhere.key).createPerson({ displayName: "Erin", username: "erin" })).person?.username).toBe(
      "erin",
    );
    expect((await failure(people().createPerson({ displayName: "Nameless" })))?.code).toBe(Code.InvalidArgument);
    expect((await failure(people().createPerson({ displayName: "Bad", email: "not an email" })))?.code).toBe(
      Code.InvalidArgument,
    );
  });

  it("lets no narrowed credential create, or re-enroll, someone more privileged than it", async () => {
    const privileged = await people().createPerson({
      displayName: "Frank",
      username: "frank",
      scopes: ["reports.read", "person.read"],
    });
    const frank = privileged.person?.id ?? "";
    const openCodes = () => t.db.database.prisma.enrollment.count({ where: { principalId: frank } });
    const before = await openCodes();

    // A user API token of the admin, limited to the onboarding actions.
    const { secret: narrow } = await t
      .client(TokenService, { key: admin.key })
      .mintUserApiToken({ scopes: ["person.create", "person.enrollment.issue"], label: "onboarding only" });
    const created = await failure(
      people(narrow).createPerson({ displayName: "Mallory", username: "mallory", scopes: ["reports.read"] }),
    );
    expect(created?.code).toBe(Code.PermissionDenied);
    expect(reasonOf(created)).toBe("SCOPE_ESCALATION");
    const reissued = await failure(people(narrow).issueEnrollment({ personId: frank }));
    expect(reasonOf(reissued)).toBe("SCOPE_ESCALATION");

    // An agent holding the onboarding actions alone.
    const { agent } = await t.client(AgentService, { key: admin.key }).registerAgent({
      displayName: "onboarding bot",
      scopes: ["person.create", "person.enrollment.issue"],
    });
    const { secret: agentKey } = await t
      .client(ApiKeyService, { key: admin.key })
      .createApiKey({ principalId: agent?.id ?? "" });
    expect(reasonOf(await failure(people(agentKey).issueEnrollment({ personId: frank })))).toBe("SCOPE_ESCALATION");
    expect(
      reasonOf(
        await failure(people(agentKey).createPerson({ displayName: "M", username: "mm2", scopes: ["reports.read"] })),
      ),
    ).toBe("SCOPE_ESCALATION");
    // Nobody gives out the operators' right.
    expect(
      reasonOf(await failure(people().createPerson({ displayName: "Op", username: "opp", scopes: ["broker.admin"] }))),
    ).toBe("SCOPE_ESCALATION");
    expect(await openCodes()).toBe(before);
    expect(await t.db.database.prisma.person.count({ where: { username: { in: ["mallory", "mm2", "opp"] } } })).toBe(0);
  });

  it("shows no person of another tenant, and changes none", async () => {
    const other = await createActor(t, { scopes: adminScopes });
    const theirs = (await people(other.key).createPerson({ displayName: "Grace", username: "grace" })).person?.id ?? "";
    const ours = (await people().listPeople({ pageSize: 500 })).people.map((p) => p.id);
    expect(ours).not.toContain(theirs);
    expect(ours).toContain(admin.principalId);
    expect(reasonOf(await failure(people().getPerson({ personId: theirs })))).toBe("PERSON_NOT_FOUND");
    expect(reasonOf(await failure(people().updatePerson({ personId: theirs, displayName: "x" })))).toBe(
      "PERSON_NOT_FOUND",
    );
    expect(reasonOf(await failure(people().suspendPerson({ personId: theirs })))).toBe("PERSON_NOT_FOUND");
    expect(reasonOf(await failure(people().removePerson({ personId: theirs })))).toBe("PERSON_NOT_FOUND");
    expect(reasonOf(await failure(people().issueEnrollment({ personId: theirs })))).toBe("PRINCIPAL_NOT_ACCESSIBLE");
    expect((await people(other.key).getPerson({ personId: theirs })).person?.status).toBe(PersonStatus.ACTIVE);
  });

  it("pages through people and updates one", async () => {
    for (const name of ["pp1", "pp2", "pp3"]) await people().createPerson({ displayName: name, username: name });
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await people().listPeople({ pageSize: 2, pageToken });
      seen.push(...page.people.map((p) => p.id));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(new Set(seen).size).toBe(seen.length);
    const all = (await people().listPeople({ pageSize: 500 })).people.map((p) => p.id);
    expect(seen).toEqual(all);
    const p1 = (await people().listPeople({ pageSize: 500 })).people.find((p) => p.username === "pp1");
    const updated = await people().updatePerson({
      personId: p1?.id ?? "",
      displayName: "P One",
      email: "pp1@example.com",
    });
    expect(updated.person).toMatchObject({ displayName: "P One", username: "pp1", email: "pp1@example.com" });
    expect(reasonOf(await failure(people().updatePerson({ personId: p1?.id ?? "", username: "pp2" })))).toBe(
      "USERNAME_TAKEN",
    );
    expect(reasonOf(await failure(people().suspendPerson({ personId: admin.principalId })))).toBe("SELF_STATUS_CHANGE");
  });

  it("slows repeated wrong passwords for an account, doubling the wait, without locking it", async () => {
    await enrolledPerson("heidi");
    for (let i = 0; i < 5; i++) expect((await signIn("heidi", "", "wrong password!")).response.status).toBe(401);
    // The sixth failure sets a one-second wait: even the right password is turned away until then.
    expect((await signIn("heidi", "", "wrong password!")).response.status).toBe(401);
    const slowed = await signIn("heidi");
    expect(slowed.response.status).toBe(429);
    expect(slowed.response.headers.get("retry-after")).toBe("1");
    t.clock.advance(1_000);
    expect((await signIn("heidi", "", "wrong password!")).response.status).toBe(401);
    const longer = await signIn("heidi");
    expect(longer.response.headers.get("retry-after")).toBe("2");
    t.clock.advance(2_000);
    // The owner gets in, and that clears the count.
    expect((await signIn("heidi")).response.status).toBe(303);
    expect((await signIn("heidi", "", "wrong password!")).response.status).toBe(401);
    // A name nobody has is slowed the same way, so the answers tell nothing.
    for (let i = 0; i < 6; i++) await signIn("nobody-here", "", "wrong password!");
    expect((await signIn("nobody-here")).response.status).toBe(429);
    const audited = await t.db.database.prisma.auditEvent.findFirst({
      where: { action: "device.login", reason: { startsWith: "SIGN_IN_SLOWED" } },
    });
    expect(audited).not.toBeNull();
  });

  it("signs out with a CSRF-checked post that ends the session", async () => {
    const { session } = await enrolledPerson("ivan");
    const page = await (await fetch(url("/device"), { headers: { cookie: session } })).text();
    expect(page).toContain('action="/device/logout"');
    const csrf = /name="csrf" value="([^"]+)"/.exec(page)?.[1] ?? "";
    expect((await post("/device/logout", { csrf: "forged" }, session)).status).toBe(403);
    const out = await post("/device/logout", { csrf }, session);
    expect(out.status).toBe(200);
    expect(out.headers.getSetCookie()[0]).toMatch(/^aegis_session=;.*Max-Age=0/i);
    expect(await (await fetch(url("/device"), { headers: { cookie: session } })).text()).toContain('name="login_csrf"');
  });

  it("creates a tenant through the API whose admin enrolls, signs in and adds an agent", async () => {
    const created = await t.client(TenantService).createTenant({
      name: "acme",
      displayName: "Acme",
      adminDisplayName: "Acme Admin",
      adminUsername: "heidi", // also in the first tenant: the sign-in form names the tenant
    });
    const tenantId = created.tenant?.id ?? "";
    expect(created.admin).toMatchObject({ tenantId, username: "heidi", status: PersonStatus.ACTIVE });
    expect(created.admin?.scopes).toEqual(expect.arrayContaining(["person.create", "agent.register", "grant.create"]));
    expect(created.admin?.scopes).toContain("credential.lease.create:provider:*:app:*:account:*");
    expect(created.admin?.scopes).not.toContain("broker.admin");
    expect(created.admin?.scopes).not.toContain("tenant.create");
    expect(created.loginClientId).toMatch(/^cli_/);

    expect((await enroll(created.adminEnrollment?.code ?? "", "acme admin password")).status).toBe(200);
    // Without the tenant the password tells the two "heidi"s apart; with it, it is explicit.
    expect((await signIn("heidi", "", "acme admin password")).response.status).toBe(303);
    const { session } = await signIn("heidi", "acme", "acme admin password");
    expect(session).toMatch(/^aegis_session=/);
    const tokens = await deviceLogin(session, created.loginClientId, "agent.register person.read");
    expect(tokens.access_token).toBeTruthy();
    const { agent } = await t
      .client(AgentService, { key: tokens.access_token })
      .registerAgent({ displayName: "acme deploy bot" });
    expect(agent).toMatchObject({ tenantId, ownerId: created.admin?.id });
    expect((await failure(t.client(TenantService, { key: tokens.access_token }).listTenants({})))?.code).toBe(
      Code.PermissionDenied,
    );
    const event = await t.db.database.prisma.auditEvent.findFirst({
      where: { action: "tenant.create", target: tenantId },
    });
    expect(event?.reason).toContain(created.admin?.id ?? "?");
  });

  it("lets a tenant made through the API onboard a person and an agent and define an API, seen by nobody else", async () => {
    const created = await t.client(TenantService).createTenant({
      name: "globex",
      displayName: "Globex",
      adminDisplayName: "Globex Admin",
      adminUsername: "globex-admin",
    });
    expect((await enroll(created.adminEnrollment?.code ?? "", "globex admin password")).status).toBe(200);
    const { session } = await signIn("globex-admin", "globex", "globex admin password");
    const wanted = [
      "person.create",
      "person.list",
      "agent.register",
      "resource_server.create",
      "resource_server.read",
      "grant.create",
      "apikey.create",
      "resource_server.admin:server:*",
    ];
    const tokens = await deviceLogin(session, created.loginClientId, wanted.join(" "));
    const key = tokens.access_token ?? "";
    expect(key).toBeTruthy();

    const person = await t.client(PersonService, { key }).createPerson({ displayName: "Globex dev", username: "dev" });
    expect(person.person?.tenantId).toBe(created.tenant?.id);
    const { agent } = await t.client(AgentService, { key }).registerAgent({ displayName: "globex bot" });
    const { resourceServer } = await t.client(ResourceServerService, { key }).createResourceServer({
      identifier: "https://api.globex.example",
      displayName: "Globex API",
      scopes: [{ name: "orders:read" }],
    });
    await t.client(GrantService, { key }).createGrant({
      principalId: agent?.id ?? "",
      scope: "orders:read",
      resourceServerId: resourceServer?.id ?? "",
    });
    const agentKey = (await t.client(ApiKeyService, { key }).createApiKey({ principalId: agent?.id ?? "" })).secret;
    const minted = await t
      .client(TokenService, { key: agentKey })
      .mintToken({ audience: "https://api.globex.example", scopes: ["orders:read"] });
    expect(minted.scope).toBe("orders:read");

    // The first tenant sees none of it, and the second none of the first's.
    const outsider = await createActor(t, {
      tenantId: admin.tenantId,
      scopes: ["person.read", "resource_server.read", "agent.read", "grant.create", "resource_server.admin:server:*"],
    });
    const notFound = [
      await failure(t.client(PersonService, { key: outsider.key }).getPerson({ personId: person.person?.id ?? "" })),
      await failure(
        t
          .client(ResourceServerService, { key: outsider.key })
          .getResourceServer({ resourceServerId: resourceServer?.id ?? "" }),
      ),
      await failure(t.client(AgentService, { key: outsider.key }).getAgent({ agentId: agent?.id ?? "" })),
    ];
    for (const error of notFound) expect(error?.code).toBe(Code.NotFound);
    const crossGrant = await failure(
      t.client(GrantService, { key: outsider.key }).createGrant({
        principalId: admin.principalId,
        scope: "orders:read",
        resourceServerId: resourceServer?.id ?? "",
      }),
    );
    expect(reasonOf(crossGrant)).toBe("RESOURCE_SERVER_NOT_FOUND");
    const crossAudience = await failure(
      t.client(TokenService, { key: outsider.key }).mintToken({ audience: "https://api.globex.example", scopes: [] }),
    );
    expect(reasonOf(crossAudience)).toBe("INVALID_TARGET");
    const theirs = await t.client(PersonService, { key }).listPeople({});
    expect(theirs.people.every((p) => p.tenantId === created.tenant?.id)).toBe(true);
  });
});
