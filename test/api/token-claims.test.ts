// Tokens the broker would never mint are refused even when its own signing
// key signed them: an `iat` in the future beyond the clock skew, or a
// lifetime past the configured maximum (a leaked or misused key).
import { createPrivateKey } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { RootKey } from "../../src/crypto/root-key.js";
import { signAccessToken } from "../../src/protocol/access-token.js";
import { newJti } from "../../src/protocol/jti.js";
import { publicBase } from "../support/agents.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { failure } from "../support/errors.js";
import { type Actor, createActor } from "../support/fixtures.js";

describe.each(databaseKinds)("token claims the broker never mints, on %s", (kind) => {
  let t: TestBroker;
  let actor: Actor;
  /** Signs claims with the broker's own active key, as only someone holding it could. */
  let sign: (claims: { iat: number; exp: number }) => string;
  beforeAll(async () => {
    t = await startTestBroker(kind, { AEGIS_TOKEN_MAX_LIFETIME_S: "900" });
    actor = await createActor(t, { scopes: ["agent.read"] });
    const active = await t.db.database.prisma.signingKey.findFirstOrThrow({ where: { state: "active" } });
    const rootKey = new RootKey(Buffer.from(t.config.rootKey ?? "", "base64url"));
    const jwk = JSON.parse(
      rootKey.open(Buffer.from(active.sealedPrivate, "base64"), `signing-key:${active.kid}`).toString("utf8"),
    );
    const key = { kid: active.kid, privateKey: createPrivateKey({ key: jwk, format: "jwk" }) };
    sign = ({ iat, exp }) =>
      signAccessToken(key, {
        iss: publicBase(t),
        sub: actor.principalId,
        aud: publicBase(t),
        iat,
        exp,
        jti: newJti({ principalId: actor.principalId, exp }),
        client_id: actor.principalId,
        tenant_id: actor.tenantId,
        scope: "agent.read",
        principal_kind: "person",
      });
  });
  afterAll(() => t.stop());

  const whoAmI = (token: string) => failure(t.client(PrincipalService, { key: token }).whoAmI({}));
  const now = () => Math.floor(Date.now() / 1000);

  it("accepts a token shaped as the broker mints them (the forging works)", async () => {
    expect(await whoAmI(sign({ iat: now(), exp: now() + 300 }))).toBeUndefined();
  });

  it.each([
    ["an iat a minute in the future", () => ({ iat: now() + 60, exp: now() + 360 }), /iat is in the future/],
    [
      "a lifetime past the configured maximum",
      () => ({ iat: now() - 10, exp: now() - 10 + 901 }),
      /lifetime 901 s exceeds the maximum of 900 s/,
    ],
  ])("refuses %s and says why in the log", async (_, claims, detail) => {
    const error = await whoAmI(sign(claims()));
    expect(error?.code).toBe(Code.Unauthenticated);
    expect(error?.message).toBe("[unauthenticated] unauthenticated");
    expect(t.logs.some((line) => detail.test(line))).toBe(true);
  });
});
