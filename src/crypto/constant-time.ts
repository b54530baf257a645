// The one comparison of secrets (keyed hashes, CSRF tokens, MACs, password
// hashes): constant time in the content, so timing tells nothing of how much
// matched. Different lengths, or nothing at all, never match.
import { timingSafeEqual } from "node:crypto";

export function sameSecret(a: Uint8Array | string, b: Uint8Array | string): boolean {
  const x = typeof a === "string" ? Buffer.from(a) : a;
  const y = typeof b === "string" ? Buffer.from(b) : b;
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}
