// The text form of long-lived secrets handed to clients (API keys now, user
// API tokens and refresh tokens later):
//
//   aegis_<kind>_<id>_<secret><checksum>
//   aegis_ak_k7d2m4q9x3c5v8b2_3fK…(43)…Zq9kP2a
//
// - `aegis_` plus a kind marker lets secret scanners recognise a leaked key;
// - `id` (16 × base32, 80 bits) is the database lookup key, not a secret;
// - `secret` is 43 × base62 (≈256 bits);
// - `checksum` is CRC-32 of everything before it, 6 × base62, so a mistyped
//   or truncated key is refused before any database work.
//
// Only a keyed hash of the whole string is stored (see api-keys.ts).
import { crc32 } from "node:zlib";
import { base32Alphabet, base62, base62Alphabet, randomText } from "./random-text.js";

export const credentialKinds = { apiKey: "ak", userToken: "ut", refreshToken: "rt", enrollment: "en" } as const;
export type CredentialKind = keyof typeof credentialKinds;

const pattern = /^aegis_([a-z]{2})_([a-z2-7]{16})_([0-9A-Za-z]{43})([0-9A-Za-z]{6})$/;
/** Longest text worth parsing; anything longer is refused unread. */
export const maxCredentialLength = 80;

export interface ParsedCredential {
  readonly kind: CredentialKind;
  readonly id: string;
  /** The whole credential text, the input to the stored hash. */
  readonly text: string;
}

export function generateCredential(kind: CredentialKind): ParsedCredential {
  const id = randomText(base32Alphabet, 16);
  const body = `aegis_${credentialKinds[kind]}_${id}_${randomText(base62Alphabet, 43)}`;
  return { kind, id, text: body + checksum(body) };
}

/** Parses a credential; undefined when it is not one (wrong shape, kind or checksum). */
export function parseCredential(text: string): ParsedCredential | undefined {
  if (text.length > maxCredentialLength) return undefined;
  const match = pattern.exec(text);
  if (!match) return undefined;
  const [, marker, id, secret, sum] = match as unknown as [string, string, string, string, string];
  const kind = (Object.keys(credentialKinds) as CredentialKind[]).find((k) => credentialKinds[k] === marker);
  if (!kind) return undefined;
  if (checksum(`aegis_${marker}_${id}_${secret}`) !== sum) return undefined;
  return { kind, id, text };
}

function checksum(body: string): string {
  return base62(crc32(body), 6);
}
