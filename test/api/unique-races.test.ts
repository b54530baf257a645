// Concurrent requests racing for one unique key: exactly one wins and every
// other answers already_exists with the reason the domain check gives, never
// `internal` (the unique violation of the loser is translated once, in
// src/core/errors/database-error.ts). On PostgreSQL the requests really run at once.
import { Code } from "@connectrpc/connect";
import { exportJWK, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentService, KeyUse } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { CredentialService } from "../../gen/proto/aegis/credential/v1/credential_pb.js";
import { DeviceAuthService } from "../../gen/proto/aegis/device/v1/device_pb.js";
import { TenantService } from "../../gen/proto/aegis/tenant/v1/tenant_pb.js";
import { sealCredential } from "../../src/sdk/index.js";
import { registerEncryptionKey } from "../support/agents.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { failure, reasonOf } from "../support/errors.js";
import { createActor } from "../support/fixtures.js";

describe.each(databaseKinds)("races on unique keys on %s", (kind) => {
  let t: TestBroker;
  beforeAll(async () => {
    t = await startTestBroker(kind);
  });
  afterAll(() => t.stop());

  /** Runs `attempt` 12 times at once; expects one success and `reason` for all the rest. */
  async function race(attempt: (i: number) => Promise<unknown>, reason: string) {
    const outcomes = await Promise.all(Array.from({ length: 12 }, (_, i) => failure(attempt(i))));
    const failed = outcomes.filter((error) => error !== undefined);
    expect(outcomes.length - failed.length).toBe(1);
    for (const error of failed) {
      expect(error?.code).toBe(Code.AlreadyExists);
      expect(reasonOf(error)).toBe(reason);
    }
  }

  it("CreateTenant with one name", async () => {
    await race(() => t.client(TenantService).createTenant({ name: "racing-tenant" }), "TENANT_NAME_TAKEN");
  });

  it("RegisterCredential at one target", async () => {
    const owner = await createActor(t, { scopes: ["credential.create:provider:*", "agent.key.add"] });
    const key = await registerEncryptionKey(t, owner.key, owner.principalId);
    const sealed = await sealCredential("s", [{ kid: key.kid, jwk: key.publicJwk }]);
    const target = { provider: "gcp", app: "race", account: "one" };
    await race(
      () =>
        t
          .client(CredentialService, { key: owner.key })
          .registerCredential({ target, displayName: "r", sealedJwe: sealed }),
      "CREDENTIAL_EXISTS",
    );
  });

  it("AddAgentKey of one key", async () => {
    const owner = await createActor(t, { scopes: ["agent.key.add"] });
    const jwkJson = JSON.stringify(await exportJWK((await generateKeyPair("ES256")).publicKey));
    await race(
      () =>
        t
          .client(AgentService, { key: owner.key })
          .addAgentKey({ agentId: owner.principalId, use: KeyUse.SIGNING, jwkJson }),
      "KEY_ALREADY_REGISTERED",
    );
  });

  it("SetLocalPassword of one username for different people of a tenant", async () => {
    const first = await createActor(t, { scopes: ["account.password.set"] });
    const people = [
      first,
      ...(await Promise.all(
        Array.from({ length: 11 }, () =>
          createActor(t, { scopes: ["account.password.set"], tenantId: first.tenantId }),
        ),
      )),
    ];
    await race(
      (i) =>
        t.client(DeviceAuthService, { key: people[i]?.key }).setLocalPassword({
          principalId: people[i]?.principalId ?? "",
          username: "racing-user",
          password: "a long enough password",
        }),
      "USERNAME_TAKEN",
    );
  });
});
