// The one-time admin key is for the person starting the broker: it goes to
// the terminal (stderr), and never into the JSON log on stdout, which log
// shippers collect and keep.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runAegis, waitFor } from "../support/cli.js";

describe("the bootstrap banner", () => {
  it("shows the admin key on stderr and keeps stdout pure JSON log lines without it", async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "aegis-banner-"));
    const broker = runAegis(["serve"], { AEGIS_DATA_DIR: dataDir, AEGIS_PORT: "0" });
    try {
      await waitFor(() => broker.stdout().includes("aegis broker listening") && /aegis_ak_\S+/.test(broker.stderr()));
      const key = /aegis_ak_\S+/.exec(broker.stderr())?.[0] ?? "";
      expect(broker.stderr()).toContain("Admin API key (shown ONCE");
      expect(broker.stdout()).not.toContain(key);
      for (const line of broker.stdout().trim().split("\n")) expect(() => JSON.parse(line), line).not.toThrow();
    } finally {
      broker.child.kill("SIGTERM");
      await broker.closed;
    }
    expect(broker.stdout()).toContain("shut down");
  });
});
