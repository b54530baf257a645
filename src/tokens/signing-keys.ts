// The broker's token signing keys and their staged rotation:
//
//   next ──rotate──▶ active ──rotate──▶ retiring ──(retireAt)──▶ gone
//     any ──retire (compromised)──▶ retired, at once
//
// The next key is published in the JWKS before it signs, so verifiers that
// cache the JWKS already know it; a retiring key stays published until every
// token it signed has expired. Private keys are sealed under the root key.
// Every change writes a `signing_keys` event to the revocation feed, so all
// instances reload their KeyRing within one poll.
import { createPrivateKey, type KeyObject, randomBytes } from "node:crypto";
import { type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK } from "jose";
import type { Prisma, PrismaClient, SigningKey } from "../../gen/prisma/client.js";
import type { Clock } from "../core/clock.js";
import { ConfigError } from "../core/config.js";
import { notFound } from "../core/errors/domain-error.js";
import type { KeyEncryptionProvider } from "../crypto/root-key.js";
import { accessTokenAlg } from "../protocol/access-token.js";

/** Serialises key-set changes across instances (any constant unique to this use). */
const signingKeyLock = 4_207_369;

export interface PublicJwk extends JWK {
  readonly kid: string;
}

export interface KeyRingSnapshot {
  readonly signer: { kid: string; privateKey: KeyObject };
  readonly verifiers: ReadonlyMap<string, CryptoKey>;
  readonly jwks: readonly PublicJwk[];
}

async function newKey(tx: Prisma.TransactionClient, rootKey: KeyEncryptionProvider, state: "next" | "active") {
  const kid = `sk_${randomBytes(12).toString("base64url")}`;
  const { privateKey, publicKey } = await generateKeyPair(accessTokenAlg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: accessTokenAlg, use: "sig" };
  const sealed = rootKey.seal(Buffer.from(JSON.stringify(await exportJWK(privateKey))), `signing-key:${kid}`);
  await tx.signingKey.create({
    data: { kid, alg: accessTokenAlg, state, publicJwk, sealedPrivate: sealed.toString("base64") },
  });
}

async function lock(tx: Prisma.TransactionClient): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(${signingKeyLock})`;
}

/** First start: make sure there is an active and a next key (safe when instances race). */
export async function ensureSigningKeys(tx: Prisma.TransactionClient, rootKey: KeyEncryptionProvider): Promise<void> {
  await lock(tx);
  const states = new Set((await tx.signingKey.findMany({ select: { state: true } })).map((k) => k.state));
  if (!states.has("active")) await newKey(tx, rootKey, "active");
  if (!states.has("next")) await newKey(tx, rootKey, "next");
}

/** Promotes next to active, sends active into retirement, publishes a new next. */
export async function rotateSigningKeys(
  tx: Prisma.TransactionClient,
  rootKey: KeyEncryptionProvider,
  clock: Clock,
  maxTokenLifetimeSeconds: number,
): Promise<void> {
  await lock(tx);
  const retireAt = new Date(clock.now().getTime() + (maxTokenLifetimeSeconds + 60) * 1000);
  await tx.signingKey.updateMany({ where: { state: "active" }, data: { state: "retiring", retireAt } });
  const promoted = await tx.signingKey.updateMany({ where: { state: "next" }, data: { state: "active" } });
  if (promoted.count === 0) await newKey(tx, rootKey, "active");
  await newKey(tx, rootKey, "next");
}

/** Retires a key at once; tokens it signed stop verifying. A new active key is ensured. */
export async function retireSigningKey(
  tx: Prisma.TransactionClient,
  rootKey: KeyEncryptionProvider,
  kid: string,
): Promise<void> {
  await lock(tx);
  const key = await tx.signingKey.findUnique({ where: { kid } });
  if (!key || key.state === "retired") throw notFound("signing key", "SIGNING_KEY_NOT_FOUND");
  await tx.signingKey.update({ where: { kid }, data: { state: "retired", retireAt: null } });
  if (key.state === "active") {
    const promoted = await tx.signingKey.updateMany({ where: { state: "next" }, data: { state: "active" } });
    if (promoted.count === 0) await newKey(tx, rootKey, "active");
    await newKey(tx, rootKey, "next");
  }
}

export function listSigningKeys(prisma: PrismaClient): Promise<SigningKey[]> {
  return prisma.signingKey.findMany({ orderBy: { createdAt: "desc" } });
}

/**
 * This instance's view of the key set: what it signs with and what it
 * accepts. Loaded from the database at start and after every key change
 * event, so verification itself never touches the database.
 */
export class KeyRing {
  #snapshot: KeyRingSnapshot | undefined;
  /** Bumped whenever the signing or accepted keys change: results cached under another version are void. */
  version = 0;
  #keySet = "";

  constructor(private readonly deps: { prisma: PrismaClient; rootKey: KeyEncryptionProvider; clock: Clock }) {}

  async reload(): Promise<void> {
    const now = this.deps.clock.now();
    const rows = await this.deps.prisma.signingKey.findMany({
      where: {
        OR: [{ state: { in: ["next", "active"] } }, { state: "retiring", retireAt: { gt: now } }],
      },
    });
    const active = rows.find((k) => k.state === "active");
    if (!active) throw new Error("no active signing key; ensureSigningKeys() was not run");
    const opened = JSON.parse(openSigningKey(this.deps.rootKey, active.sealedPrivate, active.kid)) as JWK;
    const verifiers = new Map<string, CryptoKey>();
    for (const row of rows) {
      verifiers.set(row.kid, (await importJWK(row.publicJwk as JWK, accessTokenAlg)) as CryptoKey);
    }
    this.#snapshot = {
      signer: { kid: active.kid, privateKey: createPrivateKey({ key: opened, format: "jwk" }) },
      verifiers,
      jwks: rows.map((row) => row.publicJwk as unknown as PublicJwk),
    };
    // The periodic reload usually finds nothing new; keep cached verifications then.
    const keySet = `${active.kid}|${[...verifiers.keys()].sort().join(",")}`;
    if (keySet !== this.#keySet) {
      this.#keySet = keySet;
      this.version++;
    }
  }

  get snapshot(): KeyRingSnapshot {
    if (!this.#snapshot) throw new Error("KeyRing used before reload()");
    return this.#snapshot;
  }

  /** A jose key lookup by `kid` over the accepted keys. */
  readonly lookup = async (header: { kid?: string }): Promise<CryptoKey> => {
    const key = header.kid ? this.snapshot.verifiers.get(header.kid) : undefined;
    if (!key) throw new Error(`unknown or retired signing key ${String(header.kid)}`);
    return key;
  };
}

/**
 * The active signing key's private half. Sealed under the root key, it opens
 * only with the key that sealed it: failing here, at start, means this broker
 * was given another root key than the brokers that wrote this database.
 */
function openSigningKey(rootKey: KeyEncryptionProvider, sealed: string, kid: string): string {
  try {
    return rootKey.open(Buffer.from(sealed, "base64"), `signing-key:${kid}`).toString("utf8");
  } catch (error) {
    throw new ConfigError(
      "AEGIS_ROOT_KEY",
      `does not open this database's signing key ${kid}: every broker on one database needs the root key it was ` +
        "created with (AEGIS_ROOT_KEY or AEGIS_ROOT_KEY_FILE)",
      { cause: error },
    );
  }
}
