// Several brokers on one database agree: a revocation or a signing key
// rotation on one reaches the others within a second, with no database
// round trip per verified token.
import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentService } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { CredentialService } from "../../gen/proto/aegis/credential/v1/credential_pb.js";
import { GrantService } from "../../gen/proto/aegis/grant/v1/grant_pb.js";
import { LeaseService } from "../../gen/proto/aegis/lease/v1/lease_pb.js";
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
        failure(
          dpopClient(i % 2 ? a : b, LeaseService, token, bot.dpop).redeemLease({ leaseId: lease?.leaseId ?? "" }),
        ),
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
    await a.client(AgentService, { key: owner.key }).revokeApiKey({ keyId: agent.keyId });
    expect((await keyOn(a))?.code).toBe(Code.Unauthenticated); // at once where it was revoked
    await within(1000, async () => (await keyOn(b))?.code === Code.Unauthenticated);
  });

  it("refuses to start a third broker given another root key, naming the variable", async () => {
    const other = { AEGIS_ROOT_KEY: randomBytes(32).toString("base64url"), AEGIS_PUBLIC_URL: publicUrl };
    await expect(startTestBroker(kind, other, db)).rejects.toThrow(
      /^AEGIS_ROOT_KEY: does not open this database's signing key .+: every broker on one database needs the root key/,
    );
  });
});
