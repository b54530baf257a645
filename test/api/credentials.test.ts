// CredentialService: the broker checks and stores what the owner sealed,
// answers with metadata only, and never has the plaintext: not in the
// database, not in a log line, not in a response.

import { toJsonString } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialService, GetCredentialResponseSchema } from "../../gen/proto/aegis/credential/v1/credential_pb.js";
import { GrantService } from "../../gen/proto/aegis/grant/v1/grant_pb.js";
import { LeaseService } from "../../gen/proto/aegis/lease/v1/lease_pb.js";
import { openSealedCredential, sealCredential } from "../../src/sdk/index.js";
import { type EncryptionKey, registerEncryptionKey, startAgent } from "../support/agents.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { failure, reasonOf } from "../support/errors.js";
import { type Actor, createActor } from "../support/fixtures.js";

const ownerScopes = [
  "agent.register",
  "agent.key.add",
  "apikey.create",
  "grant.create",
  "credential.create:provider:gcp",
  "credential.read:provider:gcp:app:billing",
  "credential.update:provider:gcp",
  "credential.delete:provider:gcp",
];

describe.each(databaseKinds)("credentials on %s", (kind) => {
  let t: TestBroker;
  let person: Actor;
  let mine: EncryptionKey;

  beforeAll(async () => {
    // Debug logging: the zero-knowledge check reads every line the broker writes.
    t = await startTestBroker(kind, { AEGIS_LOG_LEVEL: "debug" });
    person = await createActor(t, { scopes: ownerScopes });
    mine = await registerEncryptionKey(t, person.key, person.principalId);
  });
  afterAll(() => t.stop());

  const client = () => t.client(CredentialService, { key: person.key });
  const seal = (secret = "s3cret-value", to: EncryptionKey[] = [mine]) =>
    sealCredential(
      secret,
      to.map((k) => ({ kid: k.kid, jwk: k.publicJwk })),
    );

  it("registers, reads metadata only, lists what grants cover, re-seals with versions, deletes", async () => {
    const target = { provider: "gcp", app: "billing", account: "reader" };
    const { credential } = await client().registerCredential({
      target,
      displayName: "billing reader",
      sealedJwe: await seal(),
    });
    expect(credential).toMatchObject({ target, version: 1, ownerId: person.principalId, recipientKeyIds: [mine.kid] });
    const got = await client().getCredential({ credentialId: credential?.id ?? "" });
    expect(toJsonString(GetCredentialResponseSchema, got)).not.toContain("ciphertext");

    const duplicate = await failure(client().registerCredential({ target, displayName: "x", sealedJwe: await seal() }));
    expect(duplicate?.code).toBe(Code.AlreadyExists);

    // Readable: only targets under gcp/billing.
    await client().registerCredential({
      target: { provider: "gcp", app: "payroll", account: "reader" },
      displayName: "payroll",
      sealedJwe: await seal(),
    });
    const listed = await client().listCredentials({});
    expect(listed.credentials.map((c) => c.target?.app)).toEqual(["billing"]);

    const updated = await client().updateCredential({
      credentialId: credential?.id ?? "",
      sealedJwe: await seal("rotated"),
      expectedVersion: 1,
    });
    expect(updated.credential?.version).toBe(2);
    const stale = await failure(
      client().updateCredential({
        credentialId: credential?.id ?? "",
        sealedJwe: await seal("lost update"),
        expectedVersion: 1,
      }),
    );
    expect(stale?.code).toBe(Code.FailedPrecondition);
    expect(reasonOf(stale)).toBe("VERSION_MISMATCH");

    await client().deleteCredential({ credentialId: credential?.id ?? "" });
    const gone = await failure(client().getCredential({ credentialId: credential?.id ?? "" }));
    expect(gone?.code).toBe(Code.NotFound);
  });

  it("refuses recipients that are not registered encryption keys of this tenant", async () => {
    const target = { provider: "gcp", app: "billing", account: "recipients" };
    const stranger = await createActor(t, { scopes: ["agent.key.add"] });
    const theirs = await registerEncryptionKey(t, stranger.key, stranger.principalId);
    const made = await registerEncryptionKey(t, person.key, person.principalId, "P-256");
    for (const [sealedJwe, message] of [
      [await seal("x", [mine, theirs]), `recipient ${theirs.kid} is not a registered encryption key`],
      [await seal("x", [{ ...mine, kid: "kid_aaaaaaaaaaaaaaaaaaaa" }]), "kid_aaaaaaaaaaaaaaaaaaaa is not"],
      // The P-256 key's id on an X25519 recipient: nobody could open it.
      [await seal("x", [{ ...mine, kid: made.kid }]), "sealed with a X25519 key"],
      ["{}", "protected must be base64url"],
    ]) {
      const error = await failure(client().registerCredential({ target, displayName: "x", sealedJwe }));
      expect(error?.code).toBe(Code.InvalidArgument);
      expect(error?.message).toContain(message);
    }
  });

  it("denies targets the caller's grants do not cover, and hides other tenants' credentials", async () => {
    const uncovered = await failure(
      client().registerCredential({
        target: { provider: "aws", app: "billing", account: "x" },
        displayName: "x",
        sealedJwe: await seal(),
      }),
    );
    expect(uncovered?.code).toBe(Code.PermissionDenied);
    expect(reasonOf(uncovered)).toBe("TARGET_NOT_GRANTED");

    const stranger = await createActor(t, { scopes: ownerScopes });
    const theirKey = await registerEncryptionKey(t, stranger.key, stranger.principalId);
    const { credential } = await t.client(CredentialService, { key: stranger.key }).registerCredential({
      target: { provider: "gcp", app: "billing", account: "theirs" },
      displayName: "theirs",
      sealedJwe: await seal("x", [theirKey]),
    });
    const foreign = await failure(client().getCredential({ credentialId: credential?.id ?? "" }));
    expect(foreign?.code).toBe(Code.NotFound);
    const audited = await t.db.database.prisma.auditEvent.findFirst({
      where: { action: "credential.read", outcome: "denied", target: credential?.id ?? "" },
    });
    expect(audited).toMatchObject({ actorId: person.principalId, reason: "CREDENTIAL_NOT_FOUND" });
  });

  it("never holds the plaintext: not in the database, the logs or any response", async () => {
    const secret = `zk-${crypto.randomUUID()}-plaintext`;
    const agent = await startAgent(t, person.key, []);
    const target = { provider: "gcp", app: "billing", account: "zero-knowledge" };
    const selector = "provider:gcp:app:billing:account:zero-knowledge";
    const grants = [`credential.lease.create:${selector}`, `credential.lease.redeem:${selector}`];
    // The person holds no lease grants here: an admin-like actor of the same tenant gives them.
    const granter = await createActor(t, {
      tenantId: person.tenantId,
      scopes: ["grant.create", "credential.lease.create:provider:gcp", "credential.lease.redeem:provider:gcp"],
    });
    for (const scope of grants) {
      await t.client(GrantService, { key: granter.key }).createGrant({ principalId: agent.agentId, scope });
    }
    await client().registerCredential({
      target,
      displayName: "zk",
      sealedJwe: await seal(secret, [mine, agent.encryption]),
    });
    const leases = agent.client(LeaseService, await agent.token(grants));
    const { lease } = await leases.createLease({ target });
    const redeemed = await leases.redeemLease({ leaseId: lease?.id ?? "" });
    expect(await openSealedCredential(redeemed.sealedJwe, agent.encryption.privateJwk)).toBe(secret);

    const prisma = t.db.database.prisma;
    const tables = await prisma.$queryRawUnsafe<{ name: string }[]>(
      "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    );
    expect(tables.map((r) => r.name)).toContain("credential");
    let rows = 0;
    for (const { name } of tables) {
      const dump = await prisma.$queryRawUnsafe<{ row: string }[]>(`SELECT t::text AS row FROM "${name}" t`);
      rows += dump.length;
      for (const { row } of dump) expect(row).not.toContain(secret);
    }
    expect(rows).toBeGreaterThan(10);
    expect(t.logs.length).toBeGreaterThan(10);
    for (const line of t.logs) expect(line).not.toContain(secret);
  });
});

describe.each(databaseKinds)("listing credentials by selector grants on %s", (kind) => {
  let t: TestBroker;
  let owner: Actor;
  const targets = [
    { provider: "gcp", app: "billing", account: "reader" },
    { provider: "gcp", app: "payroll", account: "reader" },
    { provider: "aws", app: "billing", account: "deploy" },
  ];
  beforeAll(async () => {
    t = await startTestBroker(kind);
    owner = await createActor(t, { scopes: ["credential.create:provider:*", "agent.key.add"] });
    const key = await registerEncryptionKey(t, owner.key, owner.principalId);
    for (const target of targets) {
      await t.client(CredentialService, { key: owner.key }).registerCredential({
        target,
        displayName: `${target.provider}/${target.app}/${target.account}`,
        sealedJwe: await sealCredential("x", [{ kid: key.kid, jwk: key.publicJwk }]),
      });
    }
  });
  afterAll(() => t.stop());

  // A list shows exactly what a get would allow, with `*` at any position.
  it.each([
    ["credential.read:provider:*", [0, 1, 2]],
    ["credential.read:provider:*:app:*:account:*", [0, 1, 2]],
    ["credential.read:provider:gcp", [0, 1]],
    ["credential.read:provider:*:app:billing", [0, 2]],
    ["credential.read:provider:*:app:*:account:reader", [0, 1]],
    ["credential.read:provider:gcp:app:*:account:reader", [0, 1]],
    ["credential.read:provider:aws:app:billing:account:deploy", [2]],
    ["credential.read:provider:azure", []],
  ])("with %s lists exactly what it covers", async (scope, expected) => {
    const reader = await createActor(t, { tenantId: owner.tenantId, scopes: [scope] });
    const listed = await t.client(CredentialService, { key: reader.key }).listCredentials({});
    const names = listed.credentials.map((c) => c.displayName).sort();
    expect(names).toEqual(
      expected.map((i) => `${targets[i]?.provider}/${targets[i]?.app}/${targets[i]?.account}`).sort(),
    );
  });
});
