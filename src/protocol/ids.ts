// Identifiers: a short type prefix and 100 random bits in lower-case base32,
// e.g. `ten_k3f9…`. The prefix tells a reader (and a support ticket) what an
// id names; randomness means ids reveal neither counts nor creation order.
import { base32Alphabet, randomText } from "./random-text.js";

export const idPrefixes = {
  tenant: "ten",
  principal: "prn",
  grant: "grt",
  agentKey: "kid",
  credential: "crd",
  lease: "lse",
  oauthClient: "cli",
  deviceAuthorization: "dev",
  authorizationCode: "azc",
  refreshToken: "rft",
  resourceServer: "rsv",
  role: "rol",
  roleAssignment: "ras",
  kmsKey: "key",
} as const;

export type IdKind = keyof typeof idPrefixes;

export function newId(kind: IdKind): string {
  return `${idPrefixes[kind]}_${randomText(base32Alphabet, 20)}`;
}

/** True when `id` has the shape of an id of `kind` (not that it exists). */
export function isId(kind: IdKind, id: string): boolean {
  return (
    id.length === idPrefixes[kind].length + 21 &&
    id.startsWith(`${idPrefixes[kind]}_`) &&
    /^[a-z2-7]+$/.test(id.slice(-20))
  );
}
