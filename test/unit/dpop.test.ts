import { createHmac, createPrivateKey, generateKeyPairSync, randomUUID, sign } from "node:crypto";
import { exportJWK, generateKeyPair } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { DpopProofError, normalizeHtu, verifyDpopProof } from "../../src/protocol/dpop.js";
import { createDpopKey, type DpopKey } from "../support/dpop.js";

const url = "https://aegis.example.com/aegis.token.v1.TokenService/MintToken";
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const claims = () => ({ htm: "POST", htu: url, iat: Math.floor(Date.now() / 1000), jti: randomUUID() });

/**
 * A compact JWS of exactly these parts, labelled ES256 whatever `key` is and
 * signed by it with node:crypto: for forms no JOSE library would write.
 */
function rawProof(
  key: Pick<DpopKey, "jwk" | "privateJwk">,
  header: Record<string, unknown>,
  payload: string,
  dsaEncoding: "der" | "ieee-p1363",
) {
  const input = `${b64({ alg: "ES256", typ: "dpop+jwt", jwk: key.jwk, ...header })}.${payload}`;
  const signature = sign("sha256", Buffer.from(input), {
    key: createPrivateKey({ key: key.privateJwk as never, format: "jwk" }),
    dsaEncoding,
  });
  return `${input}.${signature.toString("base64url")}`;
}

describe("verifyDpopProof", () => {
  let key: DpopKey;
  let other: DpopKey;
  beforeAll(async () => {
    key = await createDpopKey();
    other = await createDpopKey();
  });
  const verify = (proof: string, extra: { method?: string; url?: string; accessToken?: string } = {}) =>
    verifyDpopProof({ proof, method: extra.method ?? "POST", url: extra.url ?? url, now: new Date(), ...extra });

  it("accepts a fresh proof and returns the key thumbprint", async () => {
    const result = await verify(await key.proof({ method: "POST", url }));
    expect(result.jkt).toBe(key.jkt);
  });

  it("accepts the URL with a query string and a differently-cased host (RFC 9449 §4.3)", async () => {
    const proof = await key.proof({ method: "POST", url: `${url.replace("aegis.example", "AEGIS.example")}?x=1` });
    expect((await verify(proof)).jkt).toBe(key.jkt);
    expect(normalizeHtu("https://A.example/p?q#f")).toBe("https://a.example/p");
  });

  it("checks ath against the presented access token", async () => {
    const proof = await key.proof({ method: "POST", url, accessToken: "token-a" });
    expect((await verify(proof, { accessToken: "token-a" })).jkt).toBe(key.jkt);
    await expect(verify(proof, { accessToken: "token-b" })).rejects.toMatchObject({ code: "wrong_ath" });
    const withoutAth = await key.proof({ method: "POST", url });
    await expect(verify(withoutAth, { accessToken: "token-a" })).rejects.toMatchObject({ code: "wrong_ath" });
  });

  // Each attack with the check that must refuse it (DpopProofError's code).
  const attacks: [string, () => Promise<string>, DpopProofError["code"]][] = [
    [
      "for another URL",
      () => key.proof({ method: "POST", url: "https://evil.example/aegis.token.v1.TokenService/MintToken" }),
      "wrong_htu",
    ],
    ["for another method", () => key.proof({ method: "GET", url }), "wrong_htm"],
    ["too old", () => key.proof({ method: "POST", url, iat: Math.floor(Date.now() / 1000) - 300 }), "too_old"],
    [
      "from the future",
      () => key.proof({ method: "POST", url, iat: Math.floor(Date.now() / 1000) + 300 }),
      "from_the_future",
    ],
    ["of the wrong typ", () => key.proof({ method: "POST", url, header: { typ: "JWT" } }), "wrong_typ"],
    [
      "naming another key than the signer",
      () => key.proof({ method: "POST", url, header: { jwk: other.jwk } }),
      "bad_signature",
    ],
    [
      "carrying a private key",
      async () => {
        const { privateKey } = await generateKeyPair("ES256", { extractable: true });
        return key.proof({ method: "POST", url, header: { jwk: await exportJWK(privateKey) } });
      },
      "private_jwk",
    ],
    [
      "HMAC-signed",
      async () => {
        const header = b64({ alg: "HS256", typ: "dpop+jwt", jwk: { kty: "oct", k: "c2VjcmV0" } });
        const payload = b64({ htm: "POST", htu: url, iat: Math.floor(Date.now() / 1000), jti: randomUUID() });
        const sig = createHmac("sha256", "secret").update(`${header}.${payload}`).digest("base64url");
        return `${header}.${payload}.${sig}`;
      },
      "refused_alg",
    ],
    [
      "unsigned (alg none)",
      async () => {
        const header = b64({ alg: "none", typ: "dpop+jwt", jwk: key.jwk });
        return `${header}.${b64({ htm: "POST", htu: url, iat: Math.floor(Date.now() / 1000), jti: "x" })}.`;
      },
      "refused_alg",
    ],
    [
      "with a tampered payload",
      async () => {
        const [h, , s] = (await key.proof({ method: "POST", url })).split(".");
        return `${h}.${b64({ htm: "POST", htu: url, iat: Math.floor(Date.now() / 1000), jti: "forged" })}.${s}`;
      },
      "bad_signature",
    ],
    ["without a jti", () => key.proof({ method: "POST", url, jti: "" }), "no_jti"],
    ["with a DER-encoded signature", async () => rawProof(key, {}, b64(claims()), "der"), "bad_signature"],
    [
      "with a second spelling of its signature (base64url's spare bits)",
      async () => {
        const proof = rawProof(key, {}, b64(claims()), "ieee-p1363");
        // 64 bytes take 86 characters; the last one carries 4 unused bits.
        const last = proof.at(-1) as string;
        const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        return `${proof.slice(0, -1)}${alphabet[alphabet.indexOf(last) ^ 1]}`;
      },
      "bad_signature",
    ],
    ["with a crit header", async () => rawProof(key, { crit: ["exp"], exp: 1 }, b64(claims()), "ieee-p1363"), "crit"],
    ["past its exp", async () => rawProof(key, {}, b64({ ...claims(), exp: 1 }), "ieee-p1363"), "expired"],
    [
      "whose payload is not a JSON object",
      async () => rawProof(key, {}, b64([claims()]), "ieee-p1363"),
      "bad_signature",
    ],
    [
      "labelled ES256 but signed by an RSA key (RS256)",
      async () => rawProof(await createDpopKey("RS256"), {}, b64(claims()), "ieee-p1363"),
      "bad_signature",
    ],
    [
      // Its signatures are 64 bytes, like ES256's: only the key-type check stops it.
      "labelled ES256 but signed by a 512-bit RSA key",
      async () => {
        const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 512 });
        const rsa = { jwk: publicKey.export({ format: "jwk" }), privateJwk: privateKey.export({ format: "jwk" }) };
        return rawProof(rsa, {}, b64(claims()), "ieee-p1363");
      },
      "bad_signature",
    ],
    [
      "labelled ES256 but signed by a P-384 key",
      async () => rawProof(await createDpopKey("ES384"), {}, b64(claims()), "ieee-p1363"),
      "bad_signature",
    ],
    [
      // Also 64-byte signatures: only the curve check stops it.
      "labelled ES256 but signed by a secp256k1 key",
      async () => {
        const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "secp256k1" });
        const k1 = { jwk: publicKey.export({ format: "jwk" }), privateJwk: privateKey.export({ format: "jwk" }) };
        return rawProof(k1, {}, b64(claims()), "ieee-p1363");
      },
      "bad_signature",
    ],
    ["that is not a JWS", async () => "not-a-proof", "not_a_jws"],
    ["oversized", async () => "a".repeat(10_000), "too_long"],
  ];

  it("accepts proofs of the other asymmetric algorithms (verified by jose)", async () => {
    for (const alg of ["ES384", "EdDSA", "PS256", "RS256"]) {
      const signer = await createDpopKey(alg);
      expect((await verify(await signer.proof({ method: "POST", url }))).jkt).toBe(signer.jkt);
    }
  });

  it.each(attacks)("refuses a proof %s with the check that stops it", async (_, make, code) => {
    const error = await verify(await make()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DpopProofError);
    expect(error).toMatchObject({ code });
  });

  it("demands a valid nonce when nonces are on", async () => {
    const proof = await key.proof({ method: "POST", url });
    await expect(
      verifyDpopProof({ proof, method: "POST", url, now: new Date(), nonce: (n) => n === "abc" }),
    ).rejects.toMatchObject({ code: "nonce_required" });
    const withNonce = await key.proof({ method: "POST", url, nonce: "abc" });
    expect(
      (await verifyDpopProof({ proof: withNonce, method: "POST", url, now: new Date(), nonce: (n) => n === "abc" }))
        .jkt,
    ).toBe(key.jkt);
  });
});
