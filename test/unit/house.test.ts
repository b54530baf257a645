// The dependency rule of the house (.dependency-cruiser.cjs) holds for the
// tree, and `npm run lint`'s check would fail on an upward import: a probe
// file in core/ that imports a domain is refused by name.
import { execFile } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const depcruise = (target: string) =>
  run("npx", ["depcruise", target, "--config", ".dependency-cruiser.cjs", "--output-type", "err"]).then(
    (done) => ({ code: 0, output: done.stdout }),
    (failed: { code: number; stdout: string }) => ({ code: failed.code, output: failed.stdout }),
  );

describe("the house's dependency rule", () => {
  it("holds for src/ with no exceptions", async () => {
    const { code, output } = await depcruise("src");
    expect(output).toContain("no dependency violations found");
    expect(code).toBe(0);
  });

  it("refuses an import that runs upward (core importing a domain)", async () => {
    const probe = "src/core/upward-import-probe.ts";
    writeFileSync(probe, 'export { tokensModule } from "../tokens/index.js";\n');
    try {
      const { code, output } = await depcruise(probe);
      expect(code).not.toBe(0);
      expect(output).toContain("core-below-everything-but-db");
    } finally {
      rmSync(probe, { force: true });
    }
  });
});
