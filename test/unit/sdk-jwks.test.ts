// The SDK's verifyAccessToken with a JWKS the resource server fetched itself:
// keys are imported once per set object, and a set is taken as it was given.
import { generateKeyPairSync } from "node:crypto";
import type { JSONWebKeySet } from "jose";
import { describe, expect, it } from "vitest";
import { verifyAccessToken } from "../../src/sdk/index.js";
import { type AccessTokenClaims, signAccessToken } from "../../src/tokens/jwt.js";

function signingKey(kid: string) {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return {
    signer: { kid, privateKey },
    jwk: { ...publicKey.export({ format: "jwk" }), kid, alg: "ES256", use: "sig" },
  };
}

const now = new Date(1_999_999_800_000);
const claims: AccessTokenClaims = {
  iss: "https://aegis.example",
  sub: "prn_agent",
  aud: "https://api.example",
  exp: 2_000_000_000,
  iat: 1_999_999_700,
  jti: "jti_1",
  client_id: "prn_agent",
  tenant_id: "ten_1",
  scope: "reports.read",
  principal_kind: "agent",
};
const options = (jwks: JSONWebKeySet) => ({ issuer: claims.iss, audience: claims.aud, jwks, now });

describe("verifyAccessToken with jwks", () => {
  const a = signingKey("sk_a");
  const b = signingKey("sk_b");
  const byA = signAccessToken(a.signer, claims);
  const byB = signAccessToken(b.signer, claims);

  it("verifies again and again with one set, and refuses keys it lacks", async () => {
    const set = { keys: [a.jwk] } as JSONWebKeySet;
    for (let i = 0; i < 3; i++) expect((await verifyAccessToken(byA, options(set))).sub).toBe("prn_agent");
    await expect(verifyAccessToken(byB, options(set))).rejects.toMatchObject({ code: "invalid_token" });
  });

  it("takes a set as it was first given: a changed key set is a new object", async () => {
    const set = { keys: [a.jwk] } as JSONWebKeySet;
    await verifyAccessToken(byA, options(set));
    set.keys.splice(0, 1, b.jwk); // swapped in place: not seen
    await expect(verifyAccessToken(byB, options(set))).rejects.toMatchObject({ code: "invalid_token" });
    expect((await verifyAccessToken(byA, options(set))).sub).toBe("prn_agent");

    const next = { keys: [b.jwk] } as JSONWebKeySet; // after a retirement: A is gone
    expect((await verifyAccessToken(byB, options(next))).sub).toBe("prn_agent");
    await expect(verifyAccessToken(byA, options(next))).rejects.toMatchObject({ code: "invalid_token" });
  });
});
