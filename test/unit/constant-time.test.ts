// The one comparison of secrets.
import { describe, expect, it } from "vitest";
import { sameSecret } from "../../src/crypto/constant-time.js";

describe("sameSecret", () => {
  it.each([
    ["equal text", "csrf-token-1", "csrf-token-1", true],
    ["equal bytes", Buffer.from([1, 2, 3]), Buffer.from([1, 2, 3]), true],
    ["one byte different", "csrf-token-1", "csrf-token-2", false],
    ["a prefix", "csrf-token", "csrf-token-1", false],
    ["both empty (no secret is never a match)", "", "", false],
    ["text against its own bytes", "abc", Buffer.from("abc"), true],
  ] as const)("%s", (_, a, b, expected) => {
    expect(sameSecret(a, b)).toBe(expected);
  });
});
