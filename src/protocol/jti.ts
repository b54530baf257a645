// A broker token's `jti` says whose it is and until when:
// `<principal id>.<exp in base 36>.<128 random bits>`. Revoking by jti alone
// needs exactly those facts (the owner, whose tenant decides who may see the
// token, and the expiry), so a mint records no row of its own: its audit
// event is its only write.
//
// Trusting the parts of a jti a caller hands in is safe: it names a real
// token only if it equals that token's jti, owner and expiry included, and a
// made-up jti revokes nothing that exists.

import { isId } from "./ids.js";
import { randomBase64url } from "./random-text.js";

export interface JtiFacts {
  readonly principalId: string;
  /** Expiry, seconds since the epoch (the token's `exp`). */
  readonly exp: number;
}

export function newJti(facts: JtiFacts): string {
  return `${facts.principalId}.${facts.exp.toString(36)}.${randomBase64url(16)}`;
}

/** The facts a jti carries; undefined when it is not one the broker mints. */
export function parseJti(jti: string): JtiFacts | undefined {
  const [principalId = "", exp = "", nonce = "", ...rest] = jti.split(".");
  if (rest.length > 0 || !isId("principal", principalId)) return undefined;
  if (!/^[0-9a-z]{1,11}$/.test(exp) || !/^[\w-]{22}$/.test(nonce)) return undefined;
  return { principalId, exp: Number.parseInt(exp, 36) };
}
