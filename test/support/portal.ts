// What the developer-portal browser tests start with: a broker, Debian's
// Chromium, the catalogue the portal serves, and the directory their
// screenshots go to ($TMPDIR/aegis-portal-screenshots, to look at by eye).
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Browser } from "playwright-core";
import type { Catalogue } from "../../src/developer/catalogue.js";
import { startTestBroker, type TestBroker } from "./broker.js";
import { launchChromium } from "./chromium.js";
import type { DatabaseKind } from "./databases.js";

export const screenshots = path.join(tmpdir(), "aegis-portal-screenshots");

export interface Portal {
  readonly t: TestBroker;
  readonly browser: Browser;
  readonly catalogue: Catalogue;
  close(): Promise<void>;
}

export async function openPortal(kind: DatabaseKind): Promise<Portal> {
  mkdirSync(screenshots, { recursive: true });
  const t = await startTestBroker(kind);
  const browser = await launchChromium().catch(async (error: unknown) => {
    await t.stop();
    throw error;
  });
  const catalogue = (await (await fetch(`${t.broker.url}/developer/catalogue.json`)).json()) as Catalogue;
  return {
    t,
    browser,
    catalogue,
    async close() {
      await browser.close();
      await t.stop();
    },
  };
}
