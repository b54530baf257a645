import { exportJWK, GeneralEncrypt, generateKeyPair, importJWK } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { forRecipient, parseSealedJwe, SealedJweError } from "../../src/protocol/sealed-jwe.js";
import { openSealedCredential, sealCredential } from "../../src/sdk/index.js";

type Json = Record<string, unknown> & { recipients: Record<string, unknown>[] };

async function keyPair(crv: "X25519" | "P-256", kid: string) {
  const pair = await generateKeyPair("ECDH-ES+A256KW", { crv, extractable: true });
  return { kid, jwk: await exportJWK(pair.publicKey), privateJwk: await exportJWK(pair.privateKey) };
}

describe("sealed credentials", () => {
  let x: Awaited<ReturnType<typeof keyPair>>;
  let p: Awaited<ReturnType<typeof keyPair>>;
  let sealed: string;

  beforeAll(async () => {
    x = await keyPair("X25519", "kid_x");
    p = await keyPair("P-256", "kid_p");
    sealed = await sealCredential("correct horse battery staple", [x, p]);
  });

  it("seals for X25519 and P-256 recipients; each opens it, alone or cut down to itself", async () => {
    expect(parseSealedJwe(sealed).recipients).toEqual([
      { kid: "kid_x", crv: "X25519" },
      { kid: "kid_p", crv: "P-256" },
    ]);
    expect(await openSealedCredential(sealed, x.privateJwk)).toBe("correct horse battery staple");
    const forP = forRecipient(sealed, "kid_p") ?? "";
    expect(forP).not.toContain("kid_x");
    expect(await openSealedCredential(forP, p.privateJwk)).toBe("correct horse battery staple");
    await expect(openSealedCredential(forP, x.privateJwk)).rejects.toThrow();
    expect(forRecipient(sealed, "kid_unknown")).toBeUndefined();
    expect(sealed).not.toContain("correct horse");
  });

  it("accepts one recipient with its header in the protected header (jose's form) and cuts it out", async () => {
    const single = await sealCredential("only me", [x]);
    const shared = JSON.parse(Buffer.from(JSON.parse(single).protected, "base64url").toString()) as object;
    expect(shared).toHaveProperty("epk");
    expect(parseSealedJwe(single).recipients).toEqual([{ kid: "kid_x", crv: "X25519" }]);
    expect(await openSealedCredential(forRecipient(single, "kid_x") ?? "", x.privateJwk)).toBe("only me");
    const withPShared = (JSON.parse(single) as Json).protected as string;
    const twoWithShared = mutate((j) => {
      j.protected = withPShared;
    });
    expect(() => parseSealedJwe(twoWithShared)).toThrow("belong in each recipient's header");
  });

  it("refuses to seal to a private key by mistake", async () => {
    await expect(sealCredential("s", [{ kid: "k", jwk: x.privateJwk }])).rejects.toThrow("not the private one");
  });

  const mutate = (change: (jwe: Json) => void) => {
    const jwe = JSON.parse(sealed) as Json;
    change(jwe);
    return JSON.stringify(jwe);
  };
  const header = (value: Record<string, unknown>) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const recipient = (jwe: Json) => jwe.recipients[0] as { header: Record<string, unknown>; encrypted_key: string };

  it.each([
    ["not JSON", () => "eyJhbGciOi...", "is not JSON"],
    ["compact serialization", () => JSON.stringify("a.b.c.d.e"), "not a JSON object"],
    [
      "over 64 KiB",
      () =>
        mutate((j) => {
          j.ciphertext = "A".repeat(70_000);
        }),
      "at most 65536 bytes",
    ],
    [
      "a shared unprotected header",
      () =>
        mutate((j) => {
          j.unprotected = { alg: "dir" };
        }),
      "unexpected member",
    ],
    [
      "enc A128GCM",
      () =>
        mutate((j) => {
          j.protected = header({ enc: "A128GCM" });
        }),
      "enc must be A256GCM",
    ],
    [
      "compression",
      () =>
        mutate((j) => {
          j.protected = header({ enc: "A256GCM", zip: "DEF" });
        }),
      "member zip",
    ],
    [
      "crit",
      () =>
        mutate((j) => {
          j.protected = header({ enc: "A256GCM", crit: ["x"] });
        }),
      "member crit",
    ],
    [
      "alg dir",
      () =>
        mutate((j) => {
          recipient(j).header.alg = "dir";
        }),
      "alg must be ECDH-ES+A256KW",
    ],
    [
      "alg RSA1_5",
      () =>
        mutate((j) => {
          recipient(j).header.alg = "RSA1_5";
        }),
      "alg must be ECDH-ES+A256KW",
    ],
    [
      "a private epk",
      () =>
        mutate((j) => {
          (recipient(j).header.epk as Record<string, unknown>).d = "AAAA";
        }),
      "member d",
    ],
    [
      "an Ed25519 epk",
      () =>
        mutate((j) => {
          (recipient(j).header.epk as Record<string, unknown>).crv = "Ed25519";
        }),
      "X25519 or P-256",
    ],
    ["no kid", () => mutate((j) => void delete recipient(j).header.kid), "kid must name"],
    [
      "a repeated kid",
      () =>
        mutate((j) => {
          j.recipients = [j.recipients[0], j.recipients[0]] as never;
        }),
      "each kid at most once",
    ],
    [
      "no recipients",
      () =>
        mutate((j) => {
          j.recipients = [];
        }),
      "list of 1 to 32",
    ],
    [
      "a short iv",
      () =>
        mutate((j) => {
          j.iv = "AAAA";
        }),
      "iv must be 12 bytes",
    ],
    [
      "a short tag",
      () =>
        mutate((j) => {
          j.tag = "AAAA";
        }),
      "tag must be 16 bytes",
    ],
    [
      "a bad encrypted_key",
      () =>
        mutate((j) => {
          recipient(j).encrypted_key = "!!";
        }),
      "must be base64url",
    ],
  ])("refuses %s", (_, make, message) => {
    expect(() => parseSealedJwe(make())).toThrow(SealedJweError);
    expect(() => parseSealedJwe(make())).toThrow(message);
  });

  it("does not open with algorithms outside the allowed pair", async () => {
    const pair = await generateKeyPair("ECDH-ES", { crv: "X25519", extractable: true });
    const jwe = await new GeneralEncrypt(new TextEncoder().encode("s"))
      .setProtectedHeader({ enc: "A128GCM" })
      .addRecipient(await importJWK(await exportJWK(pair.publicKey), "ECDH-ES+A128KW"))
      .setUnprotectedHeader({ alg: "ECDH-ES+A128KW", kid: "k" })
      .encrypt();
    await expect(openSealedCredential(JSON.stringify(jwe), await exportJWK(pair.privateKey))).rejects.toThrow();
  });
});
