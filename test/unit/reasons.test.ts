// The closed set of refusal reasons (src/core/errors/reasons.ts): stable
// UPPER_SNAKE_CASE strings, each listed once, and none listed that no code
// raises (the type keeps code from raising one that is not listed).
// Tier: unit.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { reasons } from "../../src/core/errors/reasons.js";

describe("the reasons a refusal can name", () => {
  it("are UPPER_SNAKE_CASE, each once", () => {
    expect(reasons.filter((reason) => !/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/.test(reason))).toEqual([]);
    expect(new Set(reasons).size).toBe(reasons.length);
  });

  it("are each raised by some code of the broker", () => {
    const source = readdirSync("src", { recursive: true, withFileTypes: true })
      .filter((file) => file.isFile() && file.name.endsWith(".ts") && file.name !== "reasons.ts")
      .map((file) => readFileSync(path.join(file.parentPath, file.name), "utf8"))
      .join("\n");
    expect(reasons.filter((reason) => !source.includes(`"${reason}"`))).toEqual([]);
  });
});
