// A jti carries its token's owner and expiry; anything else is no jti of ours.
import { describe, expect, it } from "vitest";
import { newId } from "../../src/protocol/ids.js";
import { newJti, parseJti } from "../../src/protocol/jti.js";

describe("jti", () => {
  const principalId = newId("principal");
  const exp = 1_796_000_000;

  it("round-trips owner and expiry and is unique", () => {
    const jti = newJti({ principalId, exp });
    expect(parseJti(jti)).toEqual({ principalId, exp });
    expect(newJti({ principalId, exp })).not.toBe(jti);
    expect(jti.length).toBeLessThanOrEqual(64);
  });

  it.each([
    ["empty", ""],
    ["a UUID", "8c7c8f5e-3d5c-4b7e-9d0e-2f1a6b3c4d5e"],
    ["no random part", `${principalId}.${exp.toString(36)}`],
    ["a short random part", `${principalId}.${exp.toString(36)}.abc`],
    ["an extra part", `${principalId}.${exp.toString(36)}.${"a".repeat(22)}.x`],
    ["another kind of id", `${newId("lease")}.${exp.toString(36)}.${"a".repeat(22)}`],
    ["a bad expiry", `${principalId}.-12.${"a".repeat(22)}`],
    ["an overlong expiry", `${principalId}.${"z".repeat(12)}.${"a".repeat(22)}`],
  ])("refuses %s", (_, jti) => {
    expect(parseJti(jti)).toBeUndefined();
  });
});
