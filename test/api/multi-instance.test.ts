// Several brokers on one database agree: a revocation or a signing key
// rotation on one reaches the others within a second, with no database
// round trip per verified token; on PostgreSQL they share the sign-in
// backoff too.
import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeyService } from "../../gen/proto/aegis/apikey/v1/apikey_pb.js";
import { CredentialService } from "../../gen/proto/aegis/credential/v1/credential_pb.js";
import { GrantService } from "../../gen/proto/aegis/grant/v1/grant_pb.js";
import { LeaseService } from "../../gen/proto/aegis/lease/v1/lease_pb.js";
import { PersonService } from "../../gen/proto/aegis/person/v1/person_pb.js";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import { sealCredential } from "../../src/sdk/index.js";
import { dpopClient, startAgent } from "../support/agents.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { createTestDatabase, databaseKinds, type TestDatabase } from "../support/databases.js";
import { failure } from "../support/errors.js";
import { type Actor, createActor } from "../support/fixtures.js";

const leaseScopes = [
  "credential.create:provider:gcp:app:billing:account:deploy",
  "credential.lease.create:provider:gcp:app:billing:account:deploy",
  "credential.lease.redeem:provider:gcp:app:billing:account:deploy",
];

/** Resolves once `check` holds, which it must within `ms`. */
const within = (ms: number, check: () => Promise<boolean>) =>
  expect.poll(check, { timeout: ms, interval: 10, message: `not within ${ms} ms` }).toBe(true);

describe.each(databaseKinds)("two brokers on one %s database", (kind) => {
  let db: TestDatabase;
  let a: TestBroker;
  let b: TestBroker;
  let agent: Actor;
  const publicUrl = "https://aegis.test";
  beforeAll(async () => {
    db = await createTestDatabase(kind);
    const env = { AEGIS_ROOT_KEY: randomBytes(32).toString("base64url"), AEGIS_PUBLIC_URL: publicUrl };
    a = await startTestBroker(kind, env, db);
    b = await startTestBroker(kind, env, db);
    agent = await createActor(a, { kind: "agent" });
  });
  afterAll(async () => {
    await a.stop();
    await b.stop();
    await db.drop();
  });

  const mintOnA = () => a.client(TokenService, { key: agent.key }).mintToken({ audience: publicUrl, scopes: [] });
  const worksOnB = async (token: string) =>
    (await failure(b.client(PrincipalService, { key: token }).whoAmI({}))) === undefined;

  it("sees a token revoked on one instance as revoked on the other within one second", async () => {
    const token = await mintOnA();
    expect(await worksOnB(token.accessToken)).toBe(true);
    await a.client(TokenService).revokeToken({ jti: token.jti });
    await within(1000, async () => !(await worksOnB(token.accessToken)));
    const error = await failure(b.client(PrincipalService, { key: token.accessToken }).whoAmI({}));
    expect(error?.code).toBe(Code.Unauthenticated);
  });

  it("follows a signing key rotation made on the other instance", async () => {
    await a.client(TokenService).rotateSigningKeys({});
    const token = await mintOnA();
    await within(1000, () => worksOnB(token.accessToken));
    const kidsOnB = (await b.client(TokenService, { key: undefined }).getJwks({})).keys.map((k) => k.kid);
    const kid = JSON.parse(Buffer.from(token.accessToken.split(".")[0] ?? "", "base64url").toString()).kid;
    expect(kidsOnB).toContain(kid);
  });
  it("redeems a single-use lease exactly once when 100 attempts are split across both instances", async () => {
    const person = await createActor(a, {
      tenantId: agent.tenantId,
      scopes: ["agent.register", "agent.key.add", "apikey.create", "grant.create", ...leaseScopes],
    });
    const bot = await startAgent(a, person.key, []);
    for (const scope of leaseScopes) {
      await a.client(GrantService, { key: person.key }).createGrant({ principalId: bot.agentId, scope });
    }
    const target = { provider: "gcp", app: "billing", account: "deploy" };
    await a.client(CredentialService, { key: person.key }).registerCredential({
      target,
      displayName: "deploy",
      sealedJwe: await sealCredential("s", [{ kid: bot.encryption.kid, jwk: bot.encryption.publicJwk }]),
    });
    const token = await bot.token(leaseScopes);
    const { lease } = await dpopClient(a, LeaseService, token, bot.dpop).createLease({ target });
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        failure(dpopClient(i % 2 ? a : b, LeaseService, token, bot.dpop).redeemLease({ leaseId: lease?.id ?? "" })),
      ),
    );
    expect(results.filter((r) => r === undefined)).toHaveLength(1);
    expect(results.filter((r) => r?.code === Code.FailedPrecondition)).toHaveLength(99);
  });

  it("stops a revoked API key that the other instance has cached, within one second", async () => {
    const keyOn = (broker: TestBroker) =>
      failure(broker.client(TokenService, { key: agent.key }).mintToken({ audience: publicUrl, scopes: [] }));
    expect(await keyOn(b)).toBeUndefined(); // now cached on b
    expect(await keyOn(b)).toBeUndefined();
    const owner = await createActor(a, { tenantId: agent.tenantId, scopes: ["apikey.revoke"] });
    await a.client(ApiKeyService, { key: owner.key }).revokeApiKey({ keyId: agent.keyId });
    expect((await keyOn(a))?.code).toBe(Code.Unauthenticated); // at once where it was revoked
    await within(1000, async () => (await keyOn(b))?.code === Code.Unauthenticated);
  });

  it("slows an account's wrong passwords over both instances at the same attempt as on one (PostgreSQL)", async () => {
    const page = (broker: TestBroker, path: string, body: Record<string, string>, cookie: string) =>
      fetch(`${broker.broker.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", cookie },
        body: new URLSearchParams(body),
        redirect: "manual",
      });
    /** Fills in and posts the form of `path` on `broker`, the way a browser does. */
    const post = async (broker: TestBroker, path: string, csrfName: string, body: Record<string, string>) => {
      const form = await fetch(`${broker.broker.url}${path}`);
      const csrf = new RegExp(`name="${csrfName}" value="([^"]+)"`).exec(await form.text())?.[1] ?? "";
      return page(broker, path === "/device" ? "/device/login" : path, { [csrfName]: csrf, ...body }, cookieOf(form));
    };
    const cookieOf = (response: Response) => (response.headers.getSetCookie()[0] ?? "").split(";")[0] ?? "";
    const password = "correct horse battery staple";
    const signIn = async (broker: TestBroker, secret = password) => {
      const response = await post(broker, "/device", "login_csrf", {
        user_code: "",
        username: "ivan",
        tenant: "",
        password: secret,
      });
      return { status: response.status, retryAfter: response.headers.get("retry-after") };
    };
    const created = await a.client(PersonService).createPerson({ displayName: "Ivan", username: "ivan", scopes: [] });
    const code = created.enrollment?.code ?? "";
    const form = await fetch(`${a.broker.url}/enroll?code=${encodeURIComponent(code)}`);
    const csrf = /name="enroll_csrf" value="([^"]+)"/.exec(await form.text())?.[1] ?? "";
    const enrolled = await page(a, "/enroll", { enroll_csrf: csrf, code, password, confirm: password }, cookieOf(form));
    expect(enrolled.status).toBe(200);
    const both = [a, b];
    const advance = (ms: number) => {
      for (const broker of both) broker.clock.advance(ms);
    };

    // Six wrong passwords at once, three on each instance: every one is counted.
    const failed = await Promise.all(
      Array.from({ length: 6 }, (_, i) => signIn(both[i % 2] as TestBroker, "wrong password!")),
    );
    expect(failed.map((f) => f.status)).toEqual([401, 401, 401, 401, 401, 401]);
    if (kind === "postgres") {
      // Five free failures, the sixth sets a one-second wait that both instances keep.
      for (const broker of both) expect(await signIn(broker)).toEqual({ status: 429, retryAfter: "1" });
      advance(1_000);
      expect((await signIn(b, "wrong password!")).status).toBe(401);
      expect(await signIn(a)).toEqual({ status: 429, retryAfter: "2" });
      advance(2_000);
      // The owner gets in on one instance, and that clears the count on both.
      expect((await signIn(a)).status).toBe(303);
      for (let i = 0; i < 5; i++) expect((await signIn(both[i % 2] as TestBroker, "wrong password!")).status).toBe(401);
      expect((await signIn(b)).status).toBe(303);
    } else {
      // The embedded database keeps each instance's count in its memory: three each, no wait yet.
      for (const broker of both) expect((await signIn(broker)).status).toBe(303);
    }
  });

  it("refuses to start a third broker given another root key, naming the variable", async () => {
    const other = { AEGIS_ROOT_KEY: randomBytes(32).toString("base64url"), AEGIS_PUBLIC_URL: publicUrl };
    await expect(startTestBroker(kind, other, db)).rejects.toThrow(
      /^AEGIS_ROOT_KEY: does not open this database's signing key .+: every broker on one database needs the root key/,
    );
  });
});
