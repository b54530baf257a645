// The portal's one script (bundled at install by esbuild, served from the
// broker, no CDN): the ⌘K palette on every page, "Try it" on operation
// pages, sign-in, the callback relay, and the snippets' broker URL.
import { setUpPalette } from "./palette.js";
import { relayCallback, setUpSignIn } from "./sign-in.js";
import { setUpTryIt } from "./try-it.js";

function showOrigin(): void {
  document.querySelectorAll(".origin").forEach((span) => {
    span.textContent = location.origin;
  });
}

showOrigin();
setUpPalette();
setUpSignIn();
setUpTryIt();
relayCallback();
