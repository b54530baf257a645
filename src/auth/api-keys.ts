// API keys: long-lived credentials of a principal (the bootstrap admin's
// credential is one). The secret is shown once at creation; the database
// keeps only an HMAC of it under a key derived from the root key, so a copy
// of the database alone cannot be used to log in or to test guesses offline.

import { createHmac } from "node:crypto";
import type { Prisma, PrismaClient } from "../../gen/prisma/client.js";
import type { ApplicationScopes, Caller } from "../core/caller.js";
import type { Clock } from "../core/clock.js";
import { unauthenticated } from "../core/errors/domain-error.js";
import { keyPurposes } from "../core/key-purposes.js";
import { sameSecret } from "../crypto/constant-time.js";
import { generateCredential, parseCredential } from "../protocol/credential-format.js";
import { formatScope, ScopeSet } from "../protocol/scope.js";
import type { Authenticator } from "./authenticate.js";

export const apiKeyHashPurpose = keyPurposes.apiKeyHash;

export function hashCredential(hashKey: Buffer, text: string): Buffer {
  return createHmac("sha256", hashKey).update(text).digest();
}

export interface IssuedApiKey {
  readonly id: string;
  /** The full secret text; returned once, never stored. */
  readonly secret: string;
}

export async function issueApiKey(
  tx: Prisma.TransactionClient,
  hashKey: Buffer,
  key: {
    tenantId: string;
    principalId: string;
    label: string;
    expiresAt?: Date;
    /** A user API token limited to these canonical scopes, instead of an API key. */
    scopes?: readonly string[];
    /** With `scopes`: they are this resource server's scopes, not the broker's. */
    resourceServerId?: string;
  },
): Promise<IssuedApiKey> {
  const credential = generateCredential(key.scopes ? "userToken" : "apiKey");
  await tx.apiKey.create({
    data: {
      id: credential.id,
      tenantId: key.tenantId,
      principalId: key.principalId,
      label: key.label,
      secretHash: hashCredential(hashKey, credential.text).toString("hex"),
      expiresAt: key.expiresAt ?? null,
      ...(key.scopes ? { kind: "user_token" as const, scopes: key.scopes.join(" ") } : {}),
      ...(key.scopes && key.resourceServerId ? { resourceServerId: key.resourceServerId } : {}),
    },
  });
  return { id: credential.id, secret: credential.text };
}

/**
 * Keys that authenticated recently, so a busy client costs one HMAC, not a
 * database read, per call. Only successes are kept, for at most `ttlMs`;
 * revoking or rotating a key and any change of its principal reach every
 * instance through the revocation feed, which drops the entries it names.
 */
export class ApiKeyCache {
  readonly #entries = new Map<string, { hash: Buffer; caller: Caller; expiresAt: Date | null; until: number }>();

  constructor(
    private readonly ttlMs = 30_000,
    private readonly max = 10_000,
  ) {}

  get(id: string, now: Date) {
    const entry = this.#entries.get(id);
    if (entry && entry.until > now.getTime()) return entry;
    this.#entries.delete(id);
    return undefined;
  }

  set(id: string, hash: Buffer, caller: Caller, expiresAt: Date | null, now: Date): void {
    if (this.#entries.size >= this.max) this.#entries.delete(this.#entries.keys().next().value as string);
    this.#entries.set(id, { hash, caller, expiresAt, until: now.getTime() + this.ttlMs });
  }

  forgetKey(id: string): void {
    this.#entries.delete(id);
  }

  forgetPrincipal(principalId: string): void {
    for (const [id, entry] of this.#entries) if (entry.caller.principalId === principalId) this.#entries.delete(id);
  }
}

/** Whether `bearer` looks like one of ours: an API key or a user API token. */
export function isApiKeyText(bearer: string): boolean {
  return bearer.startsWith("aegis_ak_") || bearer.startsWith("aegis_ut_");
}

/** The application scopes a key carries (see Caller): all for an API key, the fixed ones for a user API token. */
function applicationScopesOf(key: { scopes: string | null; resourceServerId: string | null }): ApplicationScopes {
  if (key.scopes === null) return "all";
  return { resourceServerId: key.resourceServerId ?? "", scopes: key.resourceServerId ? key.scopes.split(" ") : [] };
}

/**
 * What a key may do: all of its principal's grants, or for a user API token
 * its fixed scopes, and of those only what the principal still holds.
 */
function scopesOf(
  key: { scopes: string | null; resourceServerId: string | null },
  grants: readonly { scope: string }[],
): ScopeSet {
  // A token made for a resource server carries that server's scopes only.
  if (key.resourceServerId !== null) return new ScopeSet([]);
  const held = new ScopeSet(grants.map((g) => g.scope));
  if (key.scopes === null) return held;
  return new ScopeSet(new ScopeSet(key.scopes.split(" ")).scopes.filter((s) => held.covers(s)).map(formatScope));
}

/** Authenticates `Bearer aegis_ak_…` API keys and `Bearer aegis_ut_…` user API tokens. */
export function apiKeyAuthenticator(deps: {
  prisma: PrismaClient;
  hashKey: Buffer;
  clock: Clock;
  lastUsed?: LastUsedRecorder;
  cache?: ApiKeyCache;
}): Authenticator {
  return {
    async authenticate({ bearer, scheme }) {
      if (!bearer || !isApiKeyText(bearer)) return undefined;
      if (scheme !== "bearer") throw unauthenticated("API keys are Bearer credentials");
      // Shape and checksum first: a mistyped key costs no database work.
      const credential = parseCredential(bearer);
      if (!credential) throw unauthenticated("API key is malformed or fails its checksum");
      const now = deps.clock.now();
      const cached = deps.cache?.get(credential.id, now);
      if (cached) {
        if (!sameSecret(hashCredential(deps.hashKey, credential.text), cached.hash)) {
          throw unauthenticated(`API key ${credential.id}: secret does not match`);
        }
        if (cached.expiresAt && cached.expiresAt <= now) throw unauthenticated(`API key ${credential.id} expired`);
        deps.lastUsed?.record(credential.id, now);
        return cached.caller;
      }
      const key = await deps.prisma.apiKey.findUnique({
        where: { id: credential.id },
        include: { principal: { include: { grants: { select: { scope: true } } } } },
      });
      if (!key || key.kind !== (credential.kind === "userToken" ? "user_token" : "api_key")) {
        throw unauthenticated(`API key ${credential.id} does not exist`);
      }
      const presented = hashCredential(deps.hashKey, credential.text);
      const stored = Buffer.from(key.secretHash, "hex");
      if (!sameSecret(presented, stored)) {
        throw unauthenticated(`API key ${credential.id}: secret does not match`);
      }
      if (key.revokedAt && key.revokedAt <= now) throw unauthenticated(`API key ${key.id} is revoked`);
      if (key.expiresAt && key.expiresAt <= now) throw unauthenticated(`API key ${key.id} expired`);
      if (key.principal.status !== "active") {
        throw unauthenticated(`principal ${key.principalId} is ${key.principal.status}`);
      }
      deps.lastUsed?.record(key.id, now);
      const caller: Caller = {
        principalId: key.principalId,
        tenantId: key.tenantId,
        kind: key.principal.kind,
        scopes: scopesOf(key, key.principal.grants),
        credentialType: key.kind,
        credentialId: key.id,
        applicationScopes: applicationScopesOf(key),
        // What it issues may not outlive it (policy/credential-issuance.ts).
        ...(key.expiresAt ? { credentialExpiresAt: key.expiresAt } : {}),
      };
      // Revoked-in-the-future keys are not cached: the entry would outlive the revocation.
      if (!key.revokedAt) deps.cache?.set(key.id, stored, caller, key.expiresAt, now);
      return caller;
    },
  };
}

/**
 * Records when API keys were last used without a write per request: uses are
 * kept in memory and written at most once per key per interval.
 */
export class LastUsedRecorder {
  readonly #pending = new Map<string, Date>();
  readonly #written = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly intervalMs = 60_000,
  ) {}

  record(keyId: string, at: Date): void {
    const last = this.#written.get(keyId) ?? 0;
    if (at.getTime() - last >= this.intervalMs) this.#pending.set(keyId, at);
  }

  start(): void {
    this.#timer = setInterval(() => void this.flush().catch(() => {}), Math.min(this.intervalMs, 10_000));
    this.#timer.unref();
  }

  async flush(): Promise<void> {
    const batch = [...this.#pending];
    this.#pending.clear();
    for (const [id, at] of batch) {
      this.#written.set(id, at.getTime());
      await this.prisma.apiKey.updateMany({ where: { id }, data: { lastUsedAt: at } });
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
