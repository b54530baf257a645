import { describe, expect, it } from "vitest";
import { generateCredential, parseCredential } from "../../src/protocol/credential-format.js";

describe("credential format", () => {
  it("round-trips a generated API key", () => {
    const key = generateCredential("apiKey");
    expect(key.text).toMatch(/^aegis_ak_[a-z2-7]{16}_[0-9A-Za-z]{49}$/);
    expect(parseCredential(key.text)).toEqual(key);
  });

  it("generates distinct ids and secrets", () => {
    const texts = new Set(Array.from({ length: 200 }, () => generateCredential("apiKey").text));
    expect(texts.size).toBe(200);
  });

  it("catches every single-character typo in the secret with the checksum", () => {
    const { text } = generateCredential("apiKey");
    const start = "aegis_ak_".length + 17;
    for (let i = start; i < text.length; i++) {
      const replacement = text[i] === "a" ? "b" : "a";
      expect(parseCredential(text.slice(0, i) + replacement + text.slice(i + 1))).toBeUndefined();
    }
  });

  it.each([
    ["empty", ""],
    ["another vendor's token", "ghp_0123456789abcdefghijABCDEFGHIJ012345"],
    ["unknown kind marker", "aegis_zz_abcdefghijklmnop_0123456789012345678901234567890123456789012abcdef"],
    ["truncated", generateCredential("apiKey").text.slice(0, -1)],
    ["extended", `${generateCredential("apiKey").text}x`],
    [
      "upper-case id",
      generateCredential("apiKey").text.replace(/_([a-z2-7]{16})_/, (_, id: string) => `_${id.toUpperCase()}_`),
    ],
    ["oversized", `aegis_ak_${"a".repeat(10_000)}`],
    ["with whitespace", ` ${generateCredential("apiKey").text}`],
  ])("rejects %s", (_, text) => {
    expect(parseCredential(text)).toBeUndefined();
  });
});
