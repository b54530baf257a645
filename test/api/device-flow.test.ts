// The OAuth device flow (RFC 8628) against the running broker: an
// independent client library completes it from the discovery URL with DPoP,
// the token verifies with the SDK, and the abuse cases fail as they must.

import { createHash } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { exportJWK, SignJWT } from "jose";
import * as oauth from "oauth4webapi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceAuthService } from "../../gen/proto/aegis/device/v1/device_pb.js";
import { PersonService } from "../../gen/proto/aegis/person/v1/person_pb.js";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { verifyAccessToken } from "../../src/sdk/index.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { failure, reasonOf } from "../support/errors.js";
import { type Actor, createActor } from "../support/fixtures.js";

const insecure = { [oauth.allowInsecureRequests]: true } as const;

describe.each(databaseKinds)("device flow on %s", (kind) => {
  let t: TestBroker;
  let person: Actor;
  let clientId: string;
  let as: oauth.AuthorizationServer;

  beforeAll(async () => {
    t = await startTestBroker(kind, { AEGIS_DEVICE_POLL_INTERVAL_S: "2" });
    person = await createActor(t, {
      scopes: ["oauth_client.create", "oauth_client.disable", "reports.read", "reports.write"],
    });
    const { client } = await t.client(DeviceAuthService, { key: person.key }).createOAuthClient({
      name: "Aegis CLI",
      allowedScopes: ["reports.read", "reports.write"],
    });
    clientId = client?.id ?? "";
    const issuer = new URL(t.broker.url);
    as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure }),
    );
  });
  afterAll(() => t.stop());

  const device = (key?: string) => t.client(DeviceAuthService, { key });
  const form = (path: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
    fetch(`${t.broker.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
      body: new URLSearchParams(body),
    });
  const begin = async (scope = "reports.read") =>
    (await (await form("/oauth/device_authorization", { client_id: clientId, scope })).json()) as {
      device_code: string;
      user_code: string;
      interval: number;
    };
  const poll = async (deviceCode: string) =>
    (await (
      await form("/oauth/token", {
        grant_type: "urn:ietf:params:oauth:grant-type:device_code",
        client_id: clientId,
        device_code: deviceCode,
      })
    ).json()) as { error?: string; access_token?: string; refresh_token?: string };

  it("advertises the device flow and the protected resource in metadata", async () => {
    expect(as.device_authorization_endpoint).toBe(`${t.broker.url}/oauth/device_authorization`);
    expect(as.grant_types_supported).toEqual(
      expect.arrayContaining(["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"]),
    );
    expect(as.dpop_signing_alg_values_supported).toContain("ES256");
    const resource = await (await fetch(`${t.broker.url}/.well-known/oauth-protected-resource`)).json();
    expect(resource).toMatchObject({ resource: t.broker.url, authorization_servers: [t.broker.url] });
  });

  it("completes with an off-the-shelf client and DPoP; the token verifies with the SDK", async () => {
    const client: oauth.Client = { client_id: clientId };
    const keyPair = await oauth.generateKeyPair("ES256");
    const DPoP = oauth.DPoP(client, keyPair);
    const started = await oauth.processDeviceAuthorizationResponse(
      as,
      client,
      await oauth.deviceAuthorizationRequest(
        as,
        client,
        oauth.None(),
        { scope: "reports.read reports.write" },
        insecure,
      ),
    );
    expect(started.user_code).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    expect(started.verification_uri_complete).toBe(`${t.broker.url}/device?user_code=${started.user_code}`);
    // Pending first.
    const pending = await oauth
      .processDeviceCodeResponse(
        as,
        client,
        await oauth.deviceCodeGrantRequest(as, client, oauth.None(), started.device_code, { DPoP, ...insecure }),
      )
      .catch((e: oauth.ResponseBodyError) => e.error);
    expect(pending).toBe("authorization_pending");

    // The person approves a subset, typed in lower case without the dash.
    const { scopes } = await device(person.key).approveDeviceAuthorization({
      userCode: started.user_code.toLowerCase().replace("-", ""),
      scopes: ["reports.read"],
    });
    expect(scopes).toEqual(["reports.read"]);
    t.clock.advance(2_100); // past the polling interval
    const tokens = await oauth.processDeviceCodeResponse(
      as,
      client,
      await oauth.deviceCodeGrantRequest(as, client, oauth.None(), started.device_code, { DPoP, ...insecure }),
    );
    expect(tokens.token_type).toBe("dpop");
    expect(tokens.scope).toBe("reports.read");
    const resourceUrl = `${t.broker.url}/reports`;
    const proof = await new SignJWT({
      htm: "GET",
      htu: resourceUrl,
      ath: createHash("sha256").update(tokens.access_token).digest("base64url"),
    })
      .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: await exportJWK(keyPair.publicKey) })
      .setIssuedAt()
      .setJti(crypto.randomUUID())
      .sign(keyPair.privateKey);
    const claims = await verifyAccessToken(tokens.access_token, {
      issuer: t.broker.url,
      audience: t.broker.url,
      jwksUri: `${t.broker.url}/.well-known/jwks.json`,
      dpop: { proof, method: "GET", url: resourceUrl },
    });
    expect(claims).toMatchObject({ sub: person.principalId, client_id: clientId, scope: "reports.read" });
    expect(claims.cnf?.jkt).toBeTruthy();

    // The refresh token is bound to the same key: no proof, or another key's, is refused.
    const refreshTokenText = tokens.refresh_token ?? "";
    const bare = await form("/oauth/token", {
      grant_type: "refresh_token",
      client_id: clientId,
      refresh_token: refreshTokenText,
    });
    expect(((await bare.json()) as { error: string }).error).toBe("invalid_grant");
    const otherKey = oauth.DPoP(client, await oauth.generateKeyPair("ES256"));
    const wrongKey = await oauth
      .processRefreshTokenResponse(
        as,
        client,
        await oauth.refreshTokenGrantRequest(as, client, oauth.None(), refreshTokenText, {
          DPoP: otherKey,
          ...insecure,
        }),
      )
      .catch((e: oauth.ResponseBodyError) => e.error);
    expect(wrongKey).toBe("invalid_grant");

    // A device code is exchanged once (polled after the interval, so the refusal is not slow_down).
    t.clock.advance(2_100);
    expect((await poll(started.device_code)).error).toBe("invalid_grant");
  });

  it("answers polling faster than the interval with slow_down and adds 5 s for that code", async () => {
    const started = await begin();
    expect(started.interval).toBe(2);
    expect((await poll(started.device_code)).error).toBe("authorization_pending");
    expect((await poll(started.device_code)).error).toBe("slow_down");
    const row = await t.db.database.prisma.deviceAuthorization.findFirstOrThrow({
      where: { userCode: started.user_code.replace("-", "") },
    });
    expect(row.intervalSeconds).toBe(7);
    // Still too fast for the new interval.
    t.clock.advance(2_100);
    expect((await poll(started.device_code)).error).toBe("slow_down");
  });

  it("tells an off-the-shelf client that polls too fast to slow down", async () => {
    const client: oauth.Client = { client_id: clientId };
    const started = await oauth.processDeviceAuthorizationResponse(
      as,
      client,
      await oauth.deviceAuthorizationRequest(as, client, oauth.None(), { scope: "reports.read" }, insecure),
    );
    const pollOnce = async () =>
      oauth
        .processDeviceCodeResponse(
          as,
          client,
          await oauth.deviceCodeGrantRequest(as, client, oauth.None(), started.device_code, insecure),
        )
        .catch((e: oauth.ResponseBodyError) => e.error);
    expect(await pollOnce()).toBe("authorization_pending");
    expect(await pollOnce()).toBe("slow_down");
  });

  it("runs the same flow over RPC: begin, approve, exchange, refresh", async () => {
    const anonymous = device();
    const begun = await anonymous.beginDeviceAuthorization({ clientId, scopes: ["reports.read"] });
    const pending = await failure(anonymous.exchangeDeviceCode({ clientId, deviceCode: begun.deviceCode }));
    expect(reasonOf(pending)).toBe("AUTHORIZATION_PENDING");
    expect(pending?.code).toBe(Code.FailedPrecondition);
    await device(person.key).approveDeviceAuthorization({ userCode: begun.userCode });
    t.clock.advance(2_100);
    const { tokens } = await anonymous.exchangeDeviceCode({ clientId, deviceCode: begun.deviceCode });
    expect(tokens).toMatchObject({ tokenType: "Bearer", scope: "reports.read" });
    const me = await t.client(PrincipalService, { key: tokens?.accessToken }).whoAmI({});
    expect(me.principal?.id).toBe(person.principalId);
    const refreshed = await anonymous.refreshAccessToken({ clientId, refreshToken: tokens?.refreshToken ?? "" });
    expect(refreshed.tokens?.refreshToken).not.toBe(tokens?.refreshToken);
  });

  it("keeps codes and tokens to their own client and tenant, and approvals within what is asked and held", async () => {
    const { client: other } = await device(person.key).createOAuthClient({
      name: "other",
      allowedScopes: ["reports.read"],
    });
    const started = await begin();
    // Another client cannot exchange this device code.
    const foreignExchange = await form("/oauth/token", {
      grant_type: "urn:ietf:params:oauth:grant-type:device_code",
      client_id: other?.id ?? "",
      device_code: started.device_code,
    });
    expect(((await foreignExchange.json()) as { error: string }).error).toBe("invalid_grant");
    // Approving more than was asked, or more than one holds, is refused.
    const notAsked = await failure(
      device(person.key).approveDeviceAuthorization({ userCode: started.user_code, scopes: ["reports.write"] }),
    );
    expect(notAsked?.code).toBe(Code.InvalidArgument);
    const lesser = await createActor(t, { tenantId: person.tenantId, scopes: [] });
    const notHeld = await failure(device(lesser.key).approveDeviceAuthorization({ userCode: started.user_code }));
    expect(reasonOf(notHeld)).toBe("SCOPE_ESCALATION");

    // Its refresh token only works for the client it was issued to.
    await device(person.key).approveDeviceAuthorization({ userCode: started.user_code });
    t.clock.advance(2_100);
    const tokens = await poll(started.device_code);
    const foreignRefresh = await form("/oauth/token", {
      grant_type: "refresh_token",
      client_id: other?.id ?? "",
      refresh_token: tokens.refresh_token ?? "",
    });
    expect(((await foreignRefresh.json()) as { error: string }).error).toBe("invalid_grant");
  });

  it("refuses a sign-in whose form token does not match its cookie (login CSRF)", async () => {
    const page = await fetch(`${t.broker.url}/device`);
    const cookie = String(page.headers.get("set-cookie")).split(";")[0] ?? "";
    const forged = await fetch(`${t.broker.url}/device/login`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie },
      body: new URLSearchParams({ login_csrf: "forged", username: "alice", password: "whatever it is" }),
      redirect: "manual",
    });
    expect(forged.status).toBe(403);
    expect(forged.headers.get("set-cookie")).not.toContain("aegis_session");
    const audited = await t.db.database.prisma.auditEvent.count({
      where: { action: "device.login", outcome: "denied", reason: "CSRF_MISMATCH" },
    });
    expect(audited).toBeGreaterThan(0);
  });

  it("hides a user code from people of other tenants", async () => {
    // Its own broker: the wrong entry counts against this address's limit.
    const iso = await startTestBroker(kind);
    try {
      const owner = await createActor(iso, { scopes: ["oauth_client.create", "reports.read"] });
      const { client } = await iso
        .client(DeviceAuthService, { key: owner.key })
        .createOAuthClient({ name: "cli", allowedScopes: ["reports.read"] });
      const begun = await iso
        .client(DeviceAuthService, { key: undefined })
        .beginDeviceAuthorization({ clientId: client?.id ?? "", scopes: ["reports.read"] });
      const stranger = await createActor(iso, { scopes: ["reports.read"] });
      const crossTenant = await failure(
        iso.client(DeviceAuthService, { key: stranger.key }).approveDeviceAuthorization({ userCode: begun.userCode }),
      );
      expect(reasonOf(crossTenant)).toBe("INVALID_USER_CODE");
      const row = await iso.db.database.prisma.deviceAuthorization.findFirstOrThrow({});
      expect(row.status).toBe("pending");
    } finally {
      await iso.stop();
    }
  });

  it("never lets a client or a password be set up beyond the caller's own grants", async () => {
    const member = await createActor(t, {
      tenantId: person.tenantId,
      scopes: ["oauth_client.create", "account.password.set", "reports.read"],
    });
    const wideClient = await failure(
      device(member.key).createOAuthClient({ name: "wide", allowedScopes: ["reports.write"] }),
    );
    expect(reasonOf(wideClient)).toBe("SCOPE_ESCALATION");
    // Setting the password of a more privileged person would be taking over their account.
    const takeover = await failure(
      device(member.key).setLocalPassword({
        principalId: person.principalId,
        username: "mallory",
        password: "long enough password",
      }),
    );
    expect(reasonOf(takeover)).toBe("SCOPE_ESCALATION");
    expect(await t.db.database.prisma.localAccount.count({ where: { principalId: person.principalId } })).toBe(0);
  });

  it("reports a denial as access_denied", async () => {
    const started = await begin();
    await device(person.key).denyDeviceAuthorization({ userCode: started.user_code });
    expect((await poll(started.device_code)).error).toBe("access_denied");
  });

  it("refuses an approved login not yet exchanged once its person was suspended, even after reactivation", async () => {
    const boss = await createActor(t, {
      tenantId: person.tenantId,
      scopes: ["person.suspend", "person.reactivate", "reports.read"],
    });
    const reader = await createActor(t, { tenantId: person.tenantId, scopes: ["reports.read"] });
    const started = await begin();
    await device(reader.key).approveDeviceAuthorization({ userCode: started.user_code });
    // Suspended (their device is suspected), then reactivated within the code's life.
    const people = t.client(PersonService, { key: boss.key });
    await people.suspendPerson({ personId: reader.principalId });
    await people.reactivatePerson({ personId: reader.principalId });
    const polled = await poll(started.device_code);
    expect(polled).toEqual({ error: "access_denied", error_description: expect.any(String) });
    t.clock.advance(2_100);
    const exchanged = await failure(device().exchangeDeviceCode({ clientId, deviceCode: started.device_code }));
    expect(reasonOf(exchanged)).toBe("ACCESS_DENIED");
    expect(await t.db.database.prisma.refreshToken.count({ where: { principalId: reader.principalId } })).toBe(0);
  });

  it("refuses unknown and disabled clients, and scopes the client may not ask for", async () => {
    const unknown = await form("/oauth/device_authorization", { client_id: "cli_nope", scope: "reports.read" });
    expect(unknown.status).toBe(401);
    expect(((await unknown.json()) as { error: string }).error).toBe("invalid_client");
    const scope = await form("/oauth/device_authorization", { client_id: clientId, scope: "tenant.create" });
    expect(((await scope.json()) as { error: string }).error).toBe("invalid_scope");
    const { client } = await device(person.key).createOAuthClient({ name: "old", allowedScopes: ["reports.read"] });
    await device(person.key).disableOAuthClient({ clientId: client?.id ?? "" });
    const disabled = await failure(device().beginDeviceAuthorization({ clientId: client?.id ?? "" }));
    expect(disabled?.code).toBe(Code.Unauthenticated);
  });

  it("rotates refresh tokens, and a reused one revokes the whole family and its access tokens", async () => {
    const started = await begin();
    const other = await createActor(t, { tenantId: person.tenantId, scopes: ["reports.read"] });
    await device(other.key).approveDeviceAuthorization({ userCode: started.user_code });
    const first = await poll(started.device_code);
    expect(first.refresh_token).toMatch(/^aegis_rt_/);
    const refresh = (token: string) =>
      form("/oauth/token", { grant_type: "refresh_token", client_id: clientId, refresh_token: token }).then(
        (r) => r.json() as Promise<{ error?: string; access_token?: string; refresh_token?: string }>,
      );
    const second = await refresh(first.refresh_token ?? "");
    expect(second.refresh_token).toBeTruthy();
    expect(second.refresh_token).not.toBe(first.refresh_token);
    const whoAmI = (token: string) => failure(t.client(PrincipalService, { key: token }).whoAmI({}));
    expect(await whoAmI(second.access_token ?? "")).toBeUndefined();

    // The old one again: refused, and everything of the family stops.
    expect((await refresh(first.refresh_token ?? "")).error).toBe("invalid_grant");
    expect((await refresh(second.refresh_token ?? "")).error).toBe("invalid_grant");
    expect((await whoAmI(second.access_token ?? ""))?.code).toBe(Code.Unauthenticated);
    const revoked = await t.db.database.prisma.auditEvent.count({ where: { action: "device.refresh.revoke_family" } });
    expect(revoked).toBeGreaterThan(0);
  });

  it("limits wrong user codes per person below the limit over all addresses", async () => {
    const strict = await startTestBroker(kind, {
      AEGIS_RATE_LIMIT_USER_CODE_FAILURES_PER_MINUTE: "100",
      AEGIS_RATE_LIMIT_USER_CODE_FAILURES_PER_MINUTE_PER_PERSON: "2",
      AEGIS_RATE_LIMIT_USER_CODE_FAILURES_PER_MINUTE_GLOBAL: "3",
    });
    try {
      const [first, second] = [await createActor(strict, { scopes: [] }), await createActor(strict, { scopes: [] })];
      const approve = async (key: string) =>
        (await failure(strict.client(DeviceAuthService, { key }).approveDeviceAuthorization({ userCode: "CCCC-CCCC" })))
          ?.code;
      const codes = [];
      for (let i = 0; i < 12; i++) codes.push(await approve(first?.key ?? ""));
      // The first person is stopped by their own limit, and their refused tries
      // no longer count towards the global one, which the second person still has.
      expect(codes).toEqual([Code.NotFound, Code.NotFound, ...Array(10).fill(Code.ResourceExhausted)]);
      expect([await approve(second?.key ?? ""), await approve(second?.key ?? "")]).toEqual([
        Code.NotFound,
        Code.ResourceExhausted,
      ]);
    } finally {
      await strict.stop();
    }
  });

  it("expires device codes", async () => {
    const short = await startTestBroker(kind, { AEGIS_DEVICE_CODE_TTL_S: "1" });
    try {
      const owner = await createActor(short, { scopes: ["oauth_client.create", "reports.read"] });
      const { client } = await short
        .client(DeviceAuthService, { key: owner.key })
        .createOAuthClient({ name: "cli", allowedScopes: ["reports.read"] });
      const started = await short.client(DeviceAuthService, { key: undefined }).beginDeviceAuthorization({
        clientId: client?.id ?? "",
        scopes: ["reports.read"],
      });
      short.clock.advance(1_200);
      const expired = await failure(
        short
          .client(DeviceAuthService, { key: undefined })
          .exchangeDeviceCode({ clientId: client?.id ?? "", deviceCode: started.deviceCode }),
      );
      expect(reasonOf(expired)).toBe("EXPIRED_TOKEN");
      const approve = await failure(
        short.client(DeviceAuthService, { key: owner.key }).approveDeviceAuthorization({ userCode: started.userCode }),
      );
      expect(reasonOf(approve)).toBe("INVALID_USER_CODE");
    } finally {
      await short.stop();
    }
  });
  it("rate-limits wrong user codes per address, and audits each", async () => {
    const approve = (userCode: string) => failure(device(person.key).approveDeviceAuthorization({ userCode }));
    const results = [];
    for (let i = 0; i < 11; i++) results.push(await approve("BBBB-BBBB"));
    expect(results.slice(0, 10).every((e) => reasonOf(e) === "INVALID_USER_CODE")).toBe(true);
    expect(results[10]?.code).toBe(Code.ResourceExhausted);
    // Over the limit, even a right code is not looked up.
    const started = await begin();
    expect((await approve(started.user_code))?.code).toBe(Code.ResourceExhausted);
    const audited = await t.db.database.prisma.auditEvent.count({
      where: { action: "device.approve", outcome: "denied", actorId: person.principalId },
    });
    expect(audited).toBeGreaterThanOrEqual(12);
  });
});
