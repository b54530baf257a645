// Password hashing for people's local sign-in. scrypt (a memory-hard hash
// made for passwords, in node:crypto) with a random salt; checking against
// no stored hash costs the same as a wrong password, so timing does not tell
// known names from unknown ones.
import { randomBytes, scrypt } from "node:crypto";
import { sameSecret } from "../crypto/constant-time.js";

const params = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;
const keyLength = 32;

function derive(password: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password.normalize("NFKC"), salt, keyLength, params, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString("base64url")}$${key.toString("base64url")}`;
}

/** A fixed hash to check against when there is none, so timing does not tell names apart. */
const decoy = hashPassword(randomBytes(16).toString("hex"));

export async function verifyPassword(password: string, stored: string | undefined): Promise<boolean> {
  const [scheme, n, r, p, salt, key] = (stored ?? (await decoy)).split("$");
  if (scheme !== "scrypt" || Number(n) !== params.N || Number(r) !== params.r || Number(p) !== params.p) return false;
  const expected = Buffer.from(key ?? "", "base64url");
  const actual = await derive(password, Buffer.from(salt ?? "", "base64url"));
  return stored !== undefined && sameSecret(expected, actual);
}
