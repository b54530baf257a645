// Local sign-in for people on the verification page. Passwords are hashed
// with scrypt (a memory-hard hash made for passwords, in node:crypto) with a
// random salt; checking an unknown name costs the same as a wrong password.
import { randomBytes, scrypt } from "node:crypto";
import type { AuditBase } from "../core/audit.js";
import type { Caller } from "../core/caller.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError } from "../core/errors/domain-error.js";
import { sameSecret } from "../crypto/constant-time.js";
import { credentialHolderFor } from "../policy/credential-issuance.js";

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

/** A fixed hash to check against when the name is unknown, so timing does not tell names apart. */
const decoy = hashPassword(randomBytes(16).toString("hex"));

export async function verifyPassword(password: string, stored: string | undefined): Promise<boolean> {
  const [scheme, n, r, p, salt, key] = (stored ?? (await decoy)).split("$");
  if (scheme !== "scrypt" || Number(n) !== params.N || Number(r) !== params.r || Number(p) !== params.p) return false;
  const expected = Buffer.from(key ?? "", "base64url");
  const actual = await derive(password, Buffer.from(salt ?? "", "base64url"));
  return stored !== undefined && sameSecret(expected, actual);
}

export async function setLocalPassword(
  ctx: Pick<BrokerContext, "prisma" | "audit">,
  caller: Caller,
  auditBase: AuditBase,
  input: { principalId: string; username: string; password: string },
): Promise<void> {
  // The username's form and the password's length are request rules (device.proto).
  const username = input.username.toLowerCase();
  // A password is a full credential of its person: the one rule for issuing credentials applies.
  const person = await credentialHolderFor(ctx.prisma, caller, input.principalId, "setting this password");
  if (person.kind !== "person") {
    throw new DomainError("failed_precondition", "NOT_A_PERSON", "only people sign in with a password");
  }
  const taken = await ctx.prisma.localAccount.findUnique({ where: { username } });
  if (taken && taken.principalId !== person.id) {
    throw new DomainError("already_exists", "USERNAME_TAKEN", "this username is taken");
  }
  const passwordHash = await hashPassword(input.password);
  await ctx.audit.transaction(
    (tx) =>
      tx.localAccount.upsert({
        where: { principalId: person.id },
        create: { principalId: person.id, username, passwordHash },
        update: { username, passwordHash },
      }),
    () => ({ ...auditBase, action: "account.password.set", target: person.id, outcome: "success", reason: username }),
  );
}
