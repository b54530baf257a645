// ApiKeyService: a principal's API keys (a person's own here) created,
// listed, rotated with a grace period and revoked over a real transport; and
// AgentService, which once had the same RPCs, without them.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentService } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { ApiKeyService } from "../../gen/proto/aegis/apikey/v1/apikey_pb.js";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { failure, fieldViolationsOf } from "../support/errors.js";
import { createActor, seconds } from "../support/fixtures.js";

describe.each(databaseKinds)("ApiKeyService on %s", (kind) => {
  let t: TestBroker;
  /** The bootstrap admin, a person. */
  let adminId: string;
  beforeAll(async () => {
    t = await startTestBroker(kind);
    adminId = t.broker.bootstrap?.principalId ?? "";
  });
  afterAll(() => t.stop());

  const whoAmI = (key: string) => t.client(PrincipalService, { key }).whoAmI({});
  const refused = async (key: string) => expect((await failure(whoAmI(key)))?.code).toBe(Code.Unauthenticated);

  it("creates, lists, rotates and revokes a person's own key", async () => {
    const keys = t.client(ApiKeyService, { key: t.adminKey });
    const created = await keys.createApiKey({ principalId: adminId, label: "laptop", ttl: seconds(3600) });
    expect(created.key?.principalId).toBe(adminId);
    expect(created.key?.label).toBe("laptop");
    expect(created.key?.expireTime).toBeDefined();
    expect(created.secret.startsWith(created.key?.prefix ?? "-")).toBe(true);
    expect((await whoAmI(created.secret)).principal?.id).toBe(adminId);

    const listed = (await keys.listApiKeys({ principalId: adminId })).keys;
    expect(listed[0]?.id).toBe(created.key?.id); // newest first
    expect(Object.keys(listed[0] ?? {})).not.toContain("secret"); // metadata only

    const rotated = await keys.rotateApiKey({ keyId: created.key?.id ?? "", gracePeriod: seconds(1) });
    expect(rotated.previous?.id).toBe(created.key?.id);
    expect(rotated.key?.id).not.toBe(created.key?.id);
    expect(rotated.key?.label).toBe("laptop");
    await whoAmI(created.secret); // within the grace period
    await whoAmI(rotated.secret);
    t.clock.advance(1_100); // past the grace period
    await refused(created.secret);
    expect((await whoAmI(rotated.secret)).principal?.id).toBe(adminId);

    const revoked = await keys.revokeApiKey({ keyId: rotated.key?.id ?? "" });
    expect(revoked.key?.revokeTime).toBeDefined();
    await refused(rotated.secret);
    const after = (await keys.listApiKeys({ principalId: adminId })).keys;
    expect(after.find((k) => k.id === rotated.key?.id)?.revokeTime).toBeDefined();
  });

  it("lets a person holding the apikey actions manage their own keys", async () => {
    const person = await createActor(t, {
      scopes: ["apikey.create", "apikey.list", "apikey.rotate", "apikey.revoke"],
    });
    const keys = t.client(ApiKeyService, { key: person.key });
    const created = await keys.createApiKey({ principalId: person.principalId, label: "own" });
    expect((await whoAmI(created.secret)).principal?.id).toBe(person.principalId);
    const ids = (await keys.listApiKeys({ principalId: person.principalId })).keys.map((k) => k.id);
    expect(ids).toEqual(expect.arrayContaining([created.key?.id, person.keyId]));
    await keys.revokeApiKey({ keyId: created.key?.id ?? "" });
    await refused(created.secret);
  });

  it("refuses a caller without the action, and a key of another tenant", async () => {
    const stranger = await createActor(t);
    const error = await failure(
      t.client(ApiKeyService, { key: stranger.key }).createApiKey({ principalId: stranger.principalId }),
    );
    expect(error?.code).toBe(Code.PermissionDenied);
    const other = await createActor(t, { scopes: ["apikey.list"] });
    const listed = await failure(t.client(ApiKeyService, { key: other.key }).listApiKeys({ principalId: adminId }));
    expect(listed?.code).toBe(Code.NotFound);
  });

  it("checks the request rules it declares", async () => {
    const error = await failure(
      t.client(ApiKeyService).createApiKey({ principalId: adminId, label: "x".repeat(201), ttl: seconds(-1) }),
    );
    expect(error?.code).toBe(Code.InvalidArgument);
    expect(fieldViolationsOf(error).map((v) => v.field)).toEqual(["label", "ttl"]);
    const rotate = await failure(t.client(ApiKeyService).rotateApiKey({ keyId: "x", gracePeriod: seconds(2_592_001) }));
    expect(fieldViolationsOf(rotate).map((v) => v.field)).toEqual(["grace_period"]);
  });

  it("is ApiKeyService's alone: AgentService no longer answers the API-key RPCs it once had", async () => {
    for (const method of ["CreateApiKey", "ListApiKeys", "RotateApiKey", "RevokeApiKey"]) {
      const response = await fetch(`${t.broker.url}/aegis.agent.v1.AgentService/${method}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${t.adminKey}` },
        body: JSON.stringify({ principalId: adminId }),
      });
      expect(response.status, method).toBe(404);
    }
    expect(AgentService.method).not.toHaveProperty("createApiKey");
  });

  it("pages through a principal's keys newest first, and the first page is 100 keys when no size is asked", async () => {
    const owner = await createActor(t, { scopes: ["apikey.create", "apikey.list"] });
    const keys = t.client(ApiKeyService, { key: owner.key });
    for (let i = 0; i < 4; i++) {
      t.clock.advance(1000);
      await keys.createApiKey({ principalId: owner.principalId, label: `k${i}` });
    }
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await keys.listApiKeys({ principalId: owner.principalId, pageSize: 2, pageToken });
      expect(page.keys.length).toBeLessThanOrEqual(2);
      seen.push(...page.keys.map((k) => k.label));
      pageToken = page.nextPageToken;
    } while (pageToken);
    // Every key exactly once (creation times come from the database clock; ties fall back to the id).
    expect([...seen].sort()).toEqual(["k0", "k1", "k2", "k3", "test"]);
    const all = await t.client(ApiKeyService, { key: owner.key }).listApiKeys({ principalId: owner.principalId });
    expect(all.keys.map((k) => k.label)).toEqual(seen);
    const bad = await failure(keys.listApiKeys({ principalId: owner.principalId, pageToken: "nonsense" }));
    expect(bad?.code).toBe(Code.InvalidArgument);
  });
});
