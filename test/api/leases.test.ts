// Credential leases end to end over real transports: a person seals a
// credential on their machine for an agent, grants lease actions on its
// target, and the agent creates, redeems and opens it with a DPoP-bound
// token. Then every way it must fail, each audited.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentService } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { CredentialService } from "../../gen/proto/aegis/credential/v1/credential_pb.js";
import { GrantService } from "../../gen/proto/aegis/grant/v1/grant_pb.js";
import { LeaseService, LeaseState } from "../../gen/proto/aegis/lease/v1/lease_pb.js";
import { newId } from "../../src/protocol/ids.js";
import {
  AegisCallError,
  mintAgentToken,
  openSealedCredential,
  redeemLease,
  sealCredential,
} from "../../src/sdk/index.js";
import { dpopClient, mintDpopToken, type RunningAgent, registerEncryptionKey, startAgent } from "../support/agents.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { createDpopKey } from "../support/dpop.js";
import { failure, reasonOf } from "../support/errors.js";
import { type Actor, createActor, seconds } from "../support/fixtures.js";

const ownerScopes = [
  "agent.register",
  "agent.suspend",
  "agent.revoke",
  "agent.key.add",
  "apikey.create",
  "grant.create",
  "grant.delete",
  "credential.create:provider:gcp",
  "credential.delete:provider:gcp",
  "credential.update:provider:gcp",
  "credential.lease.create:provider:gcp",
  "credential.lease.redeem:provider:gcp",
  "credential.lease.revoke:provider:gcp",
  "credential.lease.read:provider:gcp",
  "credential.lease.delegate:provider:gcp",
];

describe.each(databaseKinds)("credential leases on %s", (kind) => {
  let t: TestBroker;
  let person: Actor;
  let seq = 0;

  beforeAll(async () => {
    t = await startTestBroker(kind);
    person = await createActor(t, { scopes: ownerScopes });
  });
  afterAll(() => t.stop());

  /** A fresh target, a credential sealed for `agent` (and the person), and lease grants for the agent. */
  async function world(options: { grants?: string[]; secret?: string } = {}) {
    const target = { provider: "gcp", app: `billing-${++seq}`, account: "deploy-bot" };
    const selector = `provider:gcp:app:${target.app}:account:deploy-bot`;
    const agent = await startAgent(t, person.key, []);
    const grants = options.grants ?? [`credential.lease.create:${selector}`, `credential.lease.redeem:${selector}`];
    for (const scope of grants) {
      await t.client(GrantService, { key: person.key }).createGrant({ principalId: agent.agentId, scope });
    }
    const secret = options.secret ?? `sk-live-${seq}-${crypto.randomUUID()}`;
    const mine = await registerEncryptionKey(t, person.key, person.principalId, "P-256");
    const sealed = await sealCredential(secret, [
      { kid: mine.kid, jwk: mine.publicJwk },
      { kid: agent.encryption.kid, jwk: agent.encryption.publicJwk },
    ]);
    const { credential } = await t
      .client(CredentialService, { key: person.key })
      .registerCredential({ target, displayName: "billing deploy key", sealedJwe: sealed });
    return { target, selector, agent, secret, credential, mine, grants };
  }

  async function leaseFor(agent: RunningAgent, target: object, scopes: string[], maxUses = 1, lifetimeSeconds = 300) {
    const token = await agent.token(scopes);
    const leases = agent.client(LeaseService, token);
    const { lease } = await leases.createLease({ target, maxUses, lifetime: seconds(lifetimeSeconds) });
    return { token, leases, lease: lease ?? (undefined as never) };
  }

  /** A LeaseService client of the person (or of `key`'s owner), with a DPoP-bound token for `scopes`. */
  async function ownerLeases(scopes: string[], key = person.key) {
    const dpop = await createDpopKey();
    return dpopClient(t, LeaseService, await mintDpopToken(t, key, dpop, scopes), dpop);
  }

  async function lastDenial(action: string) {
    return t.db.database.prisma.auditEvent.findFirst({
      where: { action, outcome: "denied" },
      orderBy: { seq: "desc" },
    });
  }

  it("runs the whole flow: seal, grant, mint with DPoP, lease, redeem, open locally, revoke", async () => {
    const { agent, target, grants, secret, credential, mine } = await world({});
    expect(credential?.version).toBe(1);
    expect(credential?.recipientKeyIds).toEqual([mine.kid, agent.encryption.kid]);
    const { leases, lease } = await leaseFor(agent, target, grants, 2);
    expect(lease.state).toBe(LeaseState.ACTIVE);
    expect(lease.holderJkt).toBe(agent.dpop.jkt);

    const redeemed = await leases.redeemLease({ leaseId: lease.id });
    expect(redeemed.keyId).toBe(agent.encryption.kid);
    expect(redeemed.remainingUses).toBe(1);
    // Only the agent's own recipient is in what comes back.
    expect(redeemed.sealedJwe).not.toContain(mine.kid);
    expect(await openSealedCredential(redeemed.sealedJwe, agent.encryption.privateJwk)).toBe(secret);
    await expect(openSealedCredential(redeemed.sealedJwe, mine.privateJwk)).rejects.toThrow();

    // Revoking is granted on its own: the agent cannot, the person can.
    const agentRevoke = await failure(leases.revokeLease({ leaseId: lease.id }));
    expect(agentRevoke?.code).toBe(Code.PermissionDenied);
    const owner = await ownerLeases(["credential.lease.revoke:provider:gcp"]);
    const revoked = await owner.revokeLease({ leaseId: lease.id });
    expect(revoked.lease?.state).toBe(LeaseState.REVOKED);
    const again = await failure(leases.redeemLease({ leaseId: lease.id }));
    expect(again?.code).toBe(Code.FailedPrecondition);
    expect(reasonOf(again)).toBe("LEASE_REVOKED");
    expect(await lastDenial("credential.lease.redeem")).toMatchObject({
      target: lease.id,
      actorId: agent.agentId,
    });
  });

  it("lets an agent do it all with the SDK: mint a DPoP token, redeem, open; refusals carry the reason", async () => {
    const { agent, target, grants, secret } = await world();
    const sdkAgent = { brokerUrl: t.broker.url, dpopKey: agent.dpop.privateJwk };
    const token = await mintAgentToken(sdkAgent, agent.apiKey, { scopes: grants });
    const { lease } = await agent.client(LeaseService, await agent.token(grants)).createLease({ target });
    // The lease is bound to the key of the token that created it: the SDK holds the same key.
    const opened = await redeemLease(sdkAgent, token, lease?.id ?? "", agent.encryption.privateJwk);
    expect(opened).toMatchObject({ secret, remainingUses: 0, keyId: agent.encryption.kid });
    const again = await redeemLease(sdkAgent, token, lease?.id ?? "", agent.encryption.privateJwk).catch((e) => e);
    expect(again).toBeInstanceOf(AegisCallError);
    expect(again).toMatchObject({ code: "failed_precondition", reason: "LEASE_EXHAUSTED" });
  });

  it("redeems a single-use lease exactly once under 100 concurrent attempts", async () => {
    const { agent, target, grants } = await world();
    const { token, lease } = await leaseFor(agent, target, grants, 1);
    const leases = agent.client(LeaseService, token);
    const results = await Promise.all(
      Array.from({ length: 100 }, () => failure(leases.redeemLease({ leaseId: lease.id }))),
    );
    const failures = results.filter((r) => r !== undefined);
    expect(results.length - failures.length).toBe(1);
    expect(failures).toHaveLength(99);
    expect(failures.every((f) => f?.code === Code.FailedPrecondition)).toBe(true);
    const row = await t.db.database.prisma.lease.findUniqueOrThrow({ where: { id: lease.id } });
    expect(row).toMatchObject({ state: "exhausted", remainingUses: 0 });
    const successes = await t.db.database.prisma.auditEvent.count({
      where: { action: "credential.lease.redeem", target: lease.id, outcome: "success" },
    });
    expect(successes).toBe(1);
  });

  it("authorizes lease actions only by a grant with a covering selector", async () => {
    const { agent, target, selector } = await world({ grants: [] });
    // An action-only grant (GrantService refuses to give one; say it came
    // from older data): the token can carry it, but it never authorizes.
    await t.db.database.prisma.grant.create({
      data: {
        id: newId("grant"),
        tenantId: person.tenantId,
        principalId: agent.agentId,
        scope: "credential.lease.create",
      },
    });
    const token = await agent.token(["credential.lease.create"]);
    const denied = await failure(agent.client(LeaseService, token).createLease({ target }));
    expect(denied?.code).toBe(Code.PermissionDenied);
    expect(reasonOf(denied)).toBe("MISSING_GRANT");
    // A selector for another app does not cover this one.
    await t.client(GrantService, { key: person.key }).createGrant({
      principalId: agent.agentId,
      scope: "credential.lease.create:provider:gcp:app:other",
    });
    const other = await agent.token(["credential.lease.create:provider:gcp:app:other:account:*"]);
    const notCovered = await failure(agent.client(LeaseService, other).createLease({ target }));
    expect(reasonOf(notCovered)).toBe("TARGET_NOT_GRANTED");
    expect((await lastDenial("credential.lease.create"))?.reason).toContain(`credential.lease.create:${selector}`);
    // A token never carries more than the agent holds.
    const escalate = await failure(agent.token([`credential.lease.create:${selector}`]));
    expect(escalate?.code).toBe(Code.PermissionDenied);
  });

  it("refuses wildcards and malformed targets in requests, naming the bad part", async () => {
    const { agent, grants } = await world();
    const leases = agent.client(LeaseService, await agent.token(grants));
    for (const [target, field] of [
      [{ provider: "gcp", app: "*", account: "deploy-bot" }, "target.app"],
      [{ provider: "GCP", app: "x", account: "y" }, "target.provider"],
      [{ provider: "gcp", app: "x" }, "target.account"],
    ] as const) {
      const error = await failure(leases.createLease({ target }));
      expect(error?.code).toBe(Code.InvalidArgument);
      expect(error?.message).toContain(field);
    }
    expect((await lastDenial("credential.lease.create"))?.reason).toContain("INVALID_ARGUMENT");
  });

  it("refuses redeem by a bearer token, another key, a replayed proof, or a stranger", async () => {
    const { agent, target, grants } = await world();
    const { token, lease } = await leaseFor(agent, target, grants, 5);
    const url = `${t.broker.url}/${LeaseService.typeName}/RedeemLease`;
    const post = (headers: Record<string, string>) =>
      fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ leaseId: lease.id }),
      });

    // Stolen token without the key: as Bearer, or as DPoP with a proof by another key.
    expect((await post({ authorization: `Bearer ${token}` })).status).toBe(401);
    const thief = await createDpopKey();
    const stolen = await post({
      authorization: `DPoP ${token}`,
      dpop: await thief.proof({ method: "POST", url, accessToken: token }),
    });
    expect(stolen.status).toBe(401);

    // Replayed proof: the first use passes, the copy is refused.
    const proof = await agent.dpop.proof({ method: "POST", url, accessToken: token });
    expect((await post({ authorization: `DPoP ${token}`, dpop: proof })).status).toBe(200);
    expect((await post({ authorization: `DPoP ${token}`, dpop: proof })).status).toBe(401);

    // The holder itself with a token bound to another of its keys.
    const otherKey = await createDpopKey();
    const otherToken = await mintDpopToken(t, agent.apiKey, otherKey, grants);
    const wrongKey = await failure(
      dpopClient(t, LeaseService, otherToken, otherKey).redeemLease({ leaseId: lease.id }),
    );
    expect(reasonOf(wrongKey)).toBe("WRONG_HOLDER_KEY");

    // Another agent of the tenant with the same grants is not the holder.
    const second = await startAgent(t, person.key, []);
    for (const scope of grants) {
      await t.client(GrantService, { key: person.key }).createGrant({ principalId: second.agentId, scope });
    }
    const notHolder = await failure(
      second.client(LeaseService, await second.token(grants)).redeemLease({ leaseId: lease.id }),
    );
    expect(reasonOf(notHolder)).toBe("NOT_LEASE_HOLDER");

    // Another tenant: the lease does not exist, whatever it holds.
    const stranger = await createActor(t, { scopes: ownerScopes });
    const foreign = await startAgent(t, stranger.key, []);
    for (const scope of grants) {
      await t.client(GrantService, { key: stranger.key }).createGrant({ principalId: foreign.agentId, scope });
    }
    const crossTenant = await failure(
      foreign.client(LeaseService, await foreign.token(grants)).redeemLease({ leaseId: lease.id }),
    );
    expect(crossTenant?.code).toBe(Code.NotFound);
    expect(await lastDenial("credential.lease.redeem")).toMatchObject({
      actorId: foreign.agentId,
      reason: "LEASE_NOT_FOUND",
    });

    const row = await t.db.database.prisma.lease.findUniqueOrThrow({ where: { id: lease.id } });
    expect(row.remainingUses).toBe(4); // only the one legitimate redeem counted
  });

  it("moves leases one way: exhausted, expired, and ended with their holder or credential", async () => {
    const { agent, target, grants, credential } = await world();
    const token = await agent.token(grants);
    const leases = agent.client(LeaseService, token);

    const { lease: once } = await leases.createLease({ target });
    await leases.redeemLease({ leaseId: once?.id ?? "" });
    const exhausted = await failure(leases.redeemLease({ leaseId: once?.id ?? "" }));
    expect(reasonOf(exhausted)).toBe("LEASE_EXHAUSTED");

    const { lease: short } = await leases.createLease({ target, lifetime: seconds(1), maxUses: 3 });
    t.clock.advance(1_100);
    const expired = await failure(leases.redeemLease({ leaseId: short?.id ?? "" }));
    expect(reasonOf(expired)).toBe("LEASE_EXPIRED");
    const expiredRow = await t.db.database.prisma.lease.findUniqueOrThrow({ where: { id: short?.id ?? "" } });
    expect(expiredRow.state).toBe("expired");
    expect(
      await t.db.database.prisma.auditEvent.count({
        where: { action: "credential.lease.expire", target: expiredRow.id },
      }),
    ).toBe(1);

    // Deleting the credential ends its leases.
    const { lease: open } = await leases.createLease({ target, maxUses: 3 });
    await t.client(CredentialService, { key: person.key }).deleteCredential({
      credentialId: credential?.id ?? "",
    });
    const gone = await t.db.database.prisma.lease.findUniqueOrThrow({ where: { id: open?.id ?? "" } });
    expect(gone).toMatchObject({ state: "revoked", endReason: "credential deleted" });
  });

  it("keeps the use when the credential is no longer sealed for the holder, and serves re-sealed material", async () => {
    const { agent, target, grants, credential, mine, secret } = await world();
    const { leases, lease } = await leaseFor(agent, target, grants, 3);
    const credentials = t.client(CredentialService, { key: person.key });
    const onlyMine = await sealCredential("rotated", [{ kid: mine.kid, jwk: mine.publicJwk }]);
    await credentials.updateCredential({ credentialId: credential?.id ?? "", sealedJwe: onlyMine });
    const refused = await failure(leases.redeemLease({ leaseId: lease.id }));
    expect(reasonOf(refused)).toBe("HOLDER_NOT_RECIPIENT");
    const row = await t.db.database.prisma.lease.findUniqueOrThrow({ where: { id: lease.id } });
    expect(row.remainingUses).toBe(3);
    // Re-sealed for the agent again: version 3 is what the next redeem opens.
    await credentials.updateCredential({
      credentialId: credential?.id ?? "",
      sealedJwe: await sealCredential(`${secret}-v3`, [{ kid: agent.encryption.kid, jwk: agent.encryption.publicJwk }]),
    });
    const redeemed = await leases.redeemLease({ leaseId: lease.id });
    expect(redeemed).toMatchObject({ remainingUses: 2, credentialVersion: 3 });
    expect(await openSealedCredential(redeemed.sealedJwe, agent.encryption.privateJwk)).toBe(`${secret}-v3`);
  });

  it("refuses to create a lease on a credential not sealed for one of the holder's live keys", async () => {
    const { agent, target, grants, credential, mine } = await world();
    const leases = agent.client(LeaseService, await agent.token(grants));
    const credentials = t.client(CredentialService, { key: person.key });
    await credentials.updateCredential({
      credentialId: credential?.id ?? "",
      sealedJwe: await sealCredential("owner only", [{ kid: mine.kid, jwk: mine.publicJwk }]),
    });
    const notSealed = await failure(leases.createLease({ target }));
    expect(notSealed?.code).toBe(Code.FailedPrecondition);
    expect(reasonOf(notSealed)).toBe("HOLDER_NOT_RECIPIENT");

    // Sealed for the agent's key again, but that key is revoked: still no lease.
    await credentials.updateCredential({
      credentialId: credential?.id ?? "",
      sealedJwe: await sealCredential("again", [{ kid: agent.encryption.kid, jwk: agent.encryption.publicJwk }]),
    });
    await t.db.database.prisma.agentKey.update({
      where: { id: agent.encryption.kid },
      data: { revokedAt: new Date() },
    });
    expect(reasonOf(await failure(leases.createLease({ target })))).toBe("HOLDER_NOT_RECIPIENT");
  });

  it("shows leases to holders of credential.lease.read on their target, filtered and paged", async () => {
    const { agent, target, grants } = await world();
    const leases = agent.client(LeaseService, await agent.token(grants));
    const made = [];
    for (let i = 0; i < 3; i++) made.push((await leases.createLease({ target, maxUses: 2 })).lease?.id ?? "");
    await leases.redeemLease({ leaseId: made[0] as string });
    await leases.redeemLease({ leaseId: made[0] as string });

    const reader = await ownerLeases(["credential.lease.read:provider:gcp"]);
    const got = await reader.getLease({ leaseId: made[0] as string });
    expect(got.lease).toMatchObject({ state: LeaseState.EXHAUSTED, remainingUses: 0, holderId: agent.agentId });
    const active = await reader.listLeases({ holderId: agent.agentId, state: LeaseState.ACTIVE, pageSize: 1 });
    expect(active.leases).toHaveLength(1);
    const rest = await reader.listLeases({
      holderId: agent.agentId,
      state: LeaseState.ACTIVE,
      pageSize: 1,
      pageToken: active.nextPageToken,
    });
    expect([active.leases[0]?.id, rest.leases[0]?.id].sort()).toEqual([made[1], made[2]].sort());
    expect(rest.nextPageToken).toBe("");

    // A read grant on another provider sees none of them; another tenant cannot even find one.
    const aws = await createActor(t, { tenantId: person.tenantId, scopes: ["credential.lease.read:provider:aws"] });
    const narrow = await ownerLeases(["credential.lease.read:provider:aws"], aws.key);
    expect((await narrow.listLeases({ holderId: agent.agentId })).leases).toHaveLength(0);
    expect(reasonOf(await failure(narrow.getLease({ leaseId: made[1] as string })))).toBe("TARGET_NOT_GRANTED");
    const stranger = await createActor(t, { scopes: ["credential.lease.read:provider:gcp"] });
    const theirs = await ownerLeases(["credential.lease.read:provider:gcp"], stranger.key);
    expect((await failure(theirs.getLease({ leaseId: made[1] as string })))?.code).toBe(Code.NotFound);
  });

  it("makes CreateLease retries safe with an idempotency key", async () => {
    const { agent, target, grants } = await world();
    const leases = agent.client(LeaseService, await agent.token(grants));
    const first = await leases.createLease({ target, maxUses: 2, idempotencyKey: "deploy-42" });
    const retries = await Promise.all(
      [1, 2, 3].map(() => leases.createLease({ target, maxUses: 2, idempotencyKey: "deploy-42" })),
    );
    for (const retry of retries) expect(retry.lease?.id).toBe(first.lease?.id);
    const other = await failure(leases.createLease({ target, maxUses: 3, idempotencyKey: "deploy-42" }));
    expect(reasonOf(other)).toBe("IDEMPOTENCY_KEY_REUSED");
    const bad = await failure(leases.createLease({ target, idempotencyKey: "no spaces" }));
    expect(bad?.code).toBe(Code.InvalidArgument);
    // Racing first calls: the unique (creator, key) lets one through, the others get its lease.
    const racing = await Promise.all([1, 2, 3].map(() => leases.createLease({ target, idempotencyKey: "deploy-43" })));
    expect(new Set(racing.map((r) => r.lease?.id)).size).toBe(1);
    const count = await t.db.database.prisma.lease.count({ where: { holderId: agent.agentId } });
    expect(count).toBe(2);
  });

  it("decides each of many concurrent creations on its own, and audits each lease once", async () => {
    // Concurrent creations share group-commit batches: no refusal may spill
    // over to another creation, and racing retries still make one lease.
    const { agent, target, grants } = await world();
    const suspended = await startAgent(t, person.key, []);
    await t.client(AgentService, { key: person.key }).suspendAgent({ agentId: suspended.agentId });
    const owner = await ownerLeases(["credential.lease.create:provider:gcp", "credential.lease.delegate:provider:gcp"]);
    const leases = agent.client(LeaseService, await agent.token(grants));
    const calls = [
      ...[1, 2, 3, 4].map(() => leases.createLease({ target })),
      ...[1, 2].map(() => leases.createLease({ target, idempotencyKey: "batch-1" })),
      owner.createLease({ target, holderId: agent.agentId, holderJkt: agent.dpop.jkt }),
      owner.createLease({ target, holderId: suspended.agentId, holderJkt: suspended.dpop.jkt }),
      owner.createLease({ target, holderId: newId("principal"), holderJkt: agent.dpop.jkt }),
      owner.createLease({ target: { provider: "gcp", app: "nothing-sealed", account: "here" } }),
    ];
    const settled = await Promise.allSettled(calls);
    const ids = (results: typeof settled) =>
      results.map((r) => (r.status === "fulfilled" ? (r.value.lease?.id ?? "") : `refused: ${String(r.reason)}`));
    const [plainIds, retryIds, delegatedIds] = [
      ids(settled.slice(0, 4)),
      ids(settled.slice(4, 6)),
      ids(settled.slice(6, 7)),
    ];
    const refused = settled.slice(7);
    expect(new Set(plainIds).size).toBe(4);
    expect(new Set(retryIds).size).toBe(1);
    for (const id of [...plainIds, ...retryIds, ...delegatedIds]) expect(id).toMatch(/^lse_/);
    expect(refused.map((r) => (r.status === "rejected" ? reasonOf(r.reason) : "created"))).toEqual([
      "HOLDER_NOT_ACTIVE",
      "AGENT_NOT_FOUND",
      "CREDENTIAL_NOT_FOUND",
    ]);

    const created = [...new Set([...plainIds, ...retryIds, ...delegatedIds])];
    expect(await t.db.database.prisma.lease.count({ where: { holderId: agent.agentId } })).toBe(6);
    const events = await t.db.database.prisma.auditEvent.findMany({
      where: { action: "credential.lease.create", target: { in: created } },
    });
    expect(events.map((e) => [e.target, e.outcome]).sort()).toEqual(created.map((id) => [id, "success"]).sort());
  });

  it("ends an agent's leases when it is suspended or revoked", async () => {
    for (const change of ["suspendAgent", "revokeAgent"] as const) {
      const { agent, target, grants } = await world();
      const { lease } = await leaseFor(agent, target, grants, 3);
      await t.client(AgentService, { key: person.key })[change]({ agentId: agent.agentId });
      const row = await t.db.database.prisma.lease.findUniqueOrThrow({ where: { id: lease.id } });
      expect(row.state).toBe("revoked");
      expect(row.endReason).toMatch(/^holder (suspended|revoked)$/);
    }
  });

  it("lets a delegation grant create a lease for another agent, bound to that agent's key", async () => {
    const { agent, target, grants } = await world();
    const owner = await ownerLeases(["credential.lease.create:provider:gcp", "credential.lease.delegate:provider:gcp"]);
    const missingJkt = await failure(owner.createLease({ target, holderId: agent.agentId }));
    expect(missingJkt?.code).toBe(Code.InvalidArgument);
    const { lease } = await owner.createLease({ target, holderId: agent.agentId, holderJkt: agent.dpop.jkt });
    expect(lease).toMatchObject({ holderId: agent.agentId, createdBy: person.principalId });
    const redeemed = await agent
      .client(LeaseService, await agent.token(grants))
      .redeemLease({ leaseId: lease?.id ?? "" });
    expect(redeemed.remainingUses).toBe(0);
  });
});
