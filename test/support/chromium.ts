// The browser of the browser tests: Debian's Chromium (installed by
// ensure-chromium.sh), headless, driven by playwright-core, with the flags
// this machine needs. One place, so every browser test runs the same one.
import { type Browser, chromium } from "playwright-core";

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}
