// axe-core (through @axe-core/playwright, in Debian's Chromium) on every page
// the developer portal serves, and the keyboard's way in. The pages are
// static assets built at install, the same whatever the database, so this
// runs once, on PGlite. Screenshots go to $TMPDIR/aegis-portal-screenshots.
import { readFileSync } from "node:fs";
import path from "node:path";
import AxeBuilder from "@axe-core/playwright";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Catalogue } from "../../src/developer/catalogue.js";
import type { TestBroker } from "../support/broker.js";
import { openPortal, type Portal, screenshots } from "../support/portal.js";

describe("developer portal accessibility", () => {
  let portal: Portal;
  let t: TestBroker;
  let browser: Browser;
  let catalogue: Catalogue;

  beforeAll(async () => {
    portal = await openPortal("pglite");
    ({ t, browser, catalogue } = portal);
  }, 120_000);
  afterAll(async () => {
    await portal?.close();
  });

  const opPath = (service: string, method: string) => `/developer/api/${service}/${method}`;

  it("has no serious or critical axe violation on any page it serves, and every page is reachable by keyboard", async () => {
    // Every page the broker serves: the guides, the callback, and every
    // operation page of the catalogue; the list must be the site's own
    // (its manifest's HTML pages), so a page added later is checked too.
    const pages = ["/developer", "/developer/security", "/developer/patterns", "/developer/callback"];
    for (const s of catalogue.services) for (const m of s.methods) pages.push(opPath(s.typeName, m.name));
    const manifest = JSON.parse(
      readFileSync(new URL("../../gen/developer/site/manifest.json", import.meta.url), "utf8"),
    ) as Record<string, { type: string }>;
    const served = Object.entries(manifest)
      .filter(([, entry]) => entry.type.startsWith("text/html"))
      .map(([p]) => p);
    expect([...pages].sort()).toEqual([...served].sort());
    const started = performance.now();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const failures: string[] = [];
    for (const p of pages) {
      await page.goto(`${t.broker.url}${p}`);
      // Legacy mode: one axe.run in the page (the portal has no frames), not
      // a fresh page per analysis to combine frame results, which made a
      // hundred pages take minutes.
      const result = await new AxeBuilder({ page }).setLegacyMode(true).analyze();
      for (const v of result.violations) {
        if (v.impact === "serious" || v.impact === "critical") {
          failures.push(
            `${p}: ${v.id} (${v.impact}) ${v.nodes
              .map((n) => n.target.join(" "))
              .slice(0, 3)
              .join(", ")}`,
          );
        }
      }
    }
    // The palette, open.
    await page.goto(`${t.broker.url}/developer`);
    await page.keyboard.press("Control+K");
    await page.locator("#palette-results[data-ready]").waitFor();
    await page.keyboard.type("lease");
    const withPalette = await new AxeBuilder({ page }).analyze();
    for (const v of withPalette.violations) {
      if (v.impact === "serious" || v.impact === "critical") failures.push(`palette: ${v.id} (${v.impact})`);
    }
    await page.keyboard.press("Escape");
    await page.locator("#palette").waitFor({ state: "hidden" });
    // Keyboard: on a fresh page the first Tab reaches the skip link.
    await page.goto(`${t.broker.url}/developer/patterns`);
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Skip to content");
    await page.screenshot({ path: path.join(screenshots, "home-focus.png") });
    await page.goto(`${t.broker.url}/developer/security`);
    await page.screenshot({ path: path.join(screenshots, "security.png") });
    console.log(
      `axe: ${pages.length} pages and the palette checked in ${Math.round((performance.now() - started) / 1000)} s`,
    );
    expect(failures).toEqual([]);
  }, 600_000);
});
