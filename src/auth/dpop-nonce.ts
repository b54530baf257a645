// Server-issued DPoP nonces (RFC 9449 §8), stateless so every instance
// agrees without sharing state: a nonce is a time window number and an HMAC
// of it. The current and the previous window are accepted.
import { createHmac } from "node:crypto";
import type { Clock } from "../core/clock.js";
import { sameSecret } from "../crypto/constant-time.js";

export interface DpopNonces {
  current(): string;
  accepts(nonce: unknown): boolean;
}

export function dpopNonces(key: Buffer, clock: Clock, windowSeconds = 300): DpopNonces {
  const windowOf = () => Math.floor(clock.now().getTime() / 1000 / windowSeconds);
  const mac = (window: number) => createHmac("sha256", key).update(`dpop-nonce:${window}`).digest().subarray(0, 16);
  const make = (window: number) => `${window.toString(36)}.${mac(window).toString("base64url")}`;
  return {
    current: () => make(windowOf()),
    accepts(nonce) {
      if (typeof nonce !== "string" || nonce.length > 64) return false;
      const [w, tag] = nonce.split(".");
      const window = Number.parseInt(w ?? "", 36);
      const now = windowOf();
      if (!tag || !(window === now || window === now - 1)) return false;
      const given = Buffer.from(tag, "base64url");
      const expected = mac(window);
      return sameSecret(given, expected);
    },
  };
}
