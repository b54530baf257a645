import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { displayUserCode, normalizeUserCode, userCodeAlphabet } from "../../src/device/device-grant.js";

const code = fc.stringMatching(new RegExp(`^[${userCodeAlphabet}]{8}$`));

describe("user codes", () => {
  it("accept any case, with or without the dash or spaces, and display as XXXX-XXXX", () => {
    fc.assert(
      fc.property(code, (c) => {
        const shown = displayUserCode(c);
        expect(shown).toMatch(/^[A-Z]{4}-[A-Z]{4}$/);
        expect(normalizeUserCode(shown)).toBe(c);
        expect(normalizeUserCode(shown.toLowerCase())).toBe(c);
        expect(normalizeUserCode(` ${c.slice(0, 4)} ${c.slice(4)} `)).toBe(c);
      }),
    );
  });

  it.each([
    ["too short", "BCDF-GHJ"],
    ["too long", "BCDF-GHJKL"],
    ["a vowel", "BCDF-GHJA"],
    ["a digit", "BCDF-GHJ1"],
    ["a look-alike letter", "BCDF-GHJY"],
    ["empty", ""],
  ])("refuse %s", (_, input) => {
    expect(normalizeUserCode(input)).toBeUndefined();
  });

  it("use an alphabet without vowels and look-alikes", () => {
    expect(userCodeAlphabet).toBe("BCDFGHJKLMNPQRSTVWXZ");
    expect(userCodeAlphabet).not.toMatch(/[AEIOUY01]/);
  });
});
