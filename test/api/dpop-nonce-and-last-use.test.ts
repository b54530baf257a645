// Server DPoP nonces (RFC 9449 §8) behind AEGIS_DPOP_NONCE, and API key
// last-use times recorded without a write per request.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { createTestDatabase } from "../support/databases.js";
import { createDpopKey } from "../support/dpop.js";
import { failure, reasonOf } from "../support/errors.js";
import { createActor } from "../support/fixtures.js";

describe("DPoP nonces", () => {
  let t: TestBroker;
  beforeAll(async () => {
    t = await startTestBroker("pglite", { AEGIS_DPOP_NONCE: "true" });
  });
  afterAll(() => t.stop());

  it("answers a proof without a nonce with use_dpop_nonce and a DPoP-Nonce, then accepts the nonce", async () => {
    const agent = await createActor(t, { kind: "agent" });
    const dpop = await createDpopKey();
    const url = `${t.broker.url}/aegis.token.v1.TokenService/MintToken`;
    const mint = async (nonce?: string) =>
      t
        .client(TokenService, { key: agent.key })
        .mintToken(
          { audience: t.broker.url, scopes: [] },
          { headers: { dpop: await dpop.proof({ method: "POST", url, ...(nonce ? { nonce } : {}) }) } },
        );
    const refused = await failure(mint());
    expect(refused?.code).toBe(Code.Unauthenticated);
    expect(reasonOf(refused)).toBe("USE_DPOP_NONCE");
    const nonce = refused?.metadata.get("dpop-nonce") ?? "";
    expect(nonce).toMatch(/^[0-9a-z]+\.[A-Za-z0-9_-]{22}$/);
    expect((await failure(mint("0.forged-nonce-value-xxxxxx")))?.code).toBe(Code.Unauthenticated);
    expect((await mint(nonce)).tokenType).toBe("DPoP");
  });

  it("returns the nonce on the OAuth token endpoint as RFC 9449 asks", async () => {
    const agent = await createActor(t, { kind: "agent" });
    const dpop = await createDpopKey();
    const res = await fetch(`${t.broker.url}/oauth/token`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`${agent.principalId}:${agent.key}`).toString("base64")}`,
        dpop: await dpop.proof({ method: "POST", url: `${t.broker.url}/oauth/token` }),
      },
      body: "grant_type=client_credentials",
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe("use_dpop_nonce");
    expect(res.headers.get("dpop-nonce")).toBeTruthy();
  });
});

describe("API key last use", () => {
  it("is recorded once the broker flushes, not written on every request", async () => {
    const db = await createTestDatabase("pglite");
    const t = await startTestBroker("pglite", {}, db);
    const agent = await createActor(t, { kind: "agent" });
    for (let i = 0; i < 5; i++)
      await t.client(TokenService, { key: agent.key }).mintToken({ audience: t.broker.url, scopes: [] });
    const before = await db.database.prisma.apiKey.findUniqueOrThrow({ where: { id: agent.keyId } });
    expect(before.lastUsedAt).toBeNull(); // not written per request
    await t.stop(); // shutdown flushes
    const after = await db.database.prisma.apiKey.findUniqueOrThrow({ where: { id: agent.keyId } });
    expect(after.lastUsedAt?.getTime()).toBeGreaterThan(Date.now() - 60_000);
    await db.drop();
  });
});
