// Random strings (src/protocol/random-text.ts), drawn from a pooled CSPRNG buffer.
import { describe, expect, it } from "vitest";
import { base32Alphabet, randomBase64url, randomText } from "../../src/protocol/random-text.js";

describe("randomBase64url", () => {
  it("never repeats across many refills of the pool", () => {
    // 4 KiB pool, 16 bytes a draw: 10,000 draws refill it about 40 times.
    const drawn = Array.from({ length: 10_000 }, () => randomBase64url(16));
    expect(new Set(drawn).size).toBe(drawn.length);
    for (const value of drawn) expect(value).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it("serves requests larger than the pool", () => {
    const big = Buffer.from(randomBase64url(10_000), "base64url");
    expect(big.length).toBe(10_000);
    // All-zero or repeating output would betray a buffer that was not filled.
    expect(new Set(big).size).toBeGreaterThan(200);
  });
});

describe("randomText", () => {
  it("uses only the alphabet and every letter of it", () => {
    const text = randomText(base32Alphabet, 5_000);
    expect(text).toHaveLength(5_000);
    expect(new Set(text)).toEqual(new Set(base32Alphabet));
  });
});
