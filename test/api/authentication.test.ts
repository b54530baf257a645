// Every way a credential can be wrong ends the same on the wire – a bare
// `unauthenticated` – while the log and the audit trail get the precise reason.
import { crc32 } from "node:zlib";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { generateCredential } from "../../src/protocol/credential-format.js";
import { base62 } from "../../src/protocol/random-text.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { failure } from "../support/errors.js";
import { type Actor, createActor } from "../support/fixtures.js";

async function callWith(t: TestBroker, authorization: string) {
  return fetch(`${t.broker.url}/aegis.principal.v1.PrincipalService/WhoAmI`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization },
    body: "{}",
  });
}

describe.each(databaseKinds)("authentication on %s", (kind) => {
  let t: TestBroker;
  let actor: Actor;
  beforeAll(async () => {
    t = await startTestBroker(kind);
    actor = await createActor(t);
  });
  afterAll(() => t.stop());

  const flip = (text: string, at: number) => text.slice(0, at) + (text[at] === "A" ? "B" : "A") + text.slice(at + 1);

  const cases: [string, (a: Actor) => string, RegExp][] = [
    ["a wrong checksum", (a) => `Bearer ${flip(a.key, a.key.length - 1)}`, /malformed or fails its checksum/],
    [
      "a wrong secret with a valid checksum",
      (a) => `Bearer ${withId(generateCredential("apiKey").text, a.keyId)}`,
      /secret does not match/,
    ],
    ["an unknown key id", () => `Bearer ${generateCredential("apiKey").text}`, /does not exist/],
    [
      "a non-Bearer scheme",
      (a) => `Basic ${Buffer.from(`x:${a.key}`).toString("base64")}`,
      /not a Bearer or DPoP credential/,
    ],
    ["an unknown token format", () => "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", /not recognised/],
    ["an oversized header", () => `Bearer ${"a".repeat(9000)}`, /too long/],
  ];

  it.each(cases)("refuses %s with a vague error and audits the precise reason", async (_, header, detail) => {
    const response = await callWith(t, header(actor));
    expect(response.status).toBe(401);
    const body = (await response.json()) as { code: string; message: string };
    expect(body).toMatchObject({ code: "unauthenticated", message: "unauthenticated" });
    const requestId = response.headers.get("aegis-request-id") ?? "";
    const event = await t.db.database.prisma.auditEvent.findFirst({ where: { requestId } });
    expect(event).toMatchObject({ outcome: "denied", action: "principal.whoami" });
    expect(event?.reason).toMatch(detail);
    expect(t.logs.some((line) => line.includes(requestId) && detail.test(line))).toBe(true);
  });

  it("refuses a revoked key and an expired key", async () => {
    const revoked = await createActor(t);
    await t.db.database.prisma.apiKey.update({ where: { id: revoked.keyId }, data: { revokedAt: new Date() } });
    const expired = await createActor(t);
    await t.db.database.prisma.apiKey.update({
      where: { id: expired.keyId },
      data: { expiresAt: new Date(Date.now() - 1000) },
    });
    for (const key of [revoked.key, expired.key]) {
      await expect(t.client(PrincipalService, { key }).whoAmI({})).rejects.toMatchObject({
        code: Code.Unauthenticated,
      });
    }
  });

  it.each(["suspended", "revoked"] as const)("refuses a %s principal's key", async (status) => {
    const subject = await createActor(t);
    await t.db.database.prisma.principal.update({ where: { id: subject.principalId }, data: { status } });
    const error = await failure(t.client(PrincipalService, { key: subject.key }).whoAmI({}));
    expect(error?.code).toBe(Code.Unauthenticated);
    expect(error?.message).toBe("[unauthenticated] unauthenticated");
  });

  it("stores only a keyed hash of API keys", async () => {
    const row = await t.db.database.prisma.apiKey.findUnique({ where: { id: actor.keyId } });
    expect(row?.secretHash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(row)).not.toContain(actor.key.slice(-49));
  });
});

/** A well-formed key (valid checksum) for an existing key id, with another secret. */
function withId(text: string, id: string): string {
  const body = text.replace(/^aegis_ak_[a-z2-7]{16}_/, `aegis_ak_${id}_`).slice(0, -6);
  return body + base62(crc32(body), 6);
}
