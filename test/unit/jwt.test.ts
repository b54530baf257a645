// Broker tokens are signed with node:crypto and verified with jose: what the
// signer writes must be a standard ES256 JWS that an independent verifier
// accepts, and nothing else must pass. Then the SDK's verifyAccessToken with a
// JWKS the resource server fetched itself: keys are imported once per set
// object, and a set is taken as it was given.
import { createPrivateKey, generateKeyPairSync } from "node:crypto";
import { decodeProtectedHeader, importJWK, type JSONWebKeySet, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { type AccessTokenClaims, signAccessToken, verifyAccessTokenJwt } from "../../src/protocol/access-token.js";
import { verifyAccessToken } from "../../src/sdk/index.js";

const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
// The key ring imports its private key from the sealed JWK, as here.
const signer = {
  kid: "sk_test",
  privateKey: createPrivateKey({ key: privateKey.export({ format: "jwk" }), format: "jwk" }),
};
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
  cnf: { jkt: "thumbprint" },
};

describe("signAccessToken", () => {
  const token = signAccessToken(signer, claims);
  const publicJwk = publicKey.export({ format: "jwk" });

  it("writes an ES256 at+jwt that jose verifies with the public key", async () => {
    expect(decodeProtectedHeader(token)).toEqual({ alg: "ES256", typ: "at+jwt", kid: "sk_test" });
    const { payload } = await jwtVerify(token, await importJWK(publicJwk as never, "ES256"), {
      algorithms: ["ES256"],
      typ: "at+jwt",
      currentDate: new Date(1_999_999_800_000),
    });
    expect(payload).toEqual(claims);
  });

  it("uses the JWS form of the signature (r || s, 64 bytes), not DER", () => {
    expect(Buffer.from(token.split(".")[2] as string, "base64url")).toHaveLength(64);
  });

  it("is refused after any change to the signed parts, or under another key", async () => {
    const key = await importJWK(publicJwk as never, "ES256");
    const lookup = async () => key;
    const options = { issuer: claims.iss, now: new Date(1_999_999_800_000) };
    const [header, payload, signature] = token.split(".") as [string, string, string];
    const widened = Buffer.from(JSON.stringify({ ...claims, scope: "broker.admin" })).toString("base64url");
    await expect(verifyAccessTokenJwt(`${header}.${widened}.${signature}`, lookup, options)).rejects.toThrow();
    const other = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    const forged = signAccessToken({ kid: "sk_test", privateKey: other }, claims);
    await expect(verifyAccessTokenJwt(forged, lookup, options)).rejects.toThrow();
    await expect(verifyAccessTokenJwt(token, lookup, options)).resolves.toMatchObject({ sub: claims.sub });
    expect(payload).not.toBe(widened);
  });
});

function signingKey(kid: string) {
  const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = { ...pair.publicKey.export({ format: "jwk" }), kid, alg: "ES256", use: "sig" };
  return { signer: { kid, privateKey: pair.privateKey }, jwk };
}

// Not DPoP-bound: the SDK would ask for a proof.
const { cnf: _cnf, ...bearerClaims } = claims;
const options = (jwks: JSONWebKeySet) => ({
  issuer: claims.iss,
  audience: claims.aud,
  jwks,
  now: new Date(1_999_999_800_000),
});

describe("verifyAccessToken with jwks", () => {
  const a = signingKey("sk_a");
  const b = signingKey("sk_b");
  const byA = signAccessToken(a.signer, bearerClaims);
  const byB = signAccessToken(b.signer, bearerClaims);

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
