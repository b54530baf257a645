// The revocation feed: how every broker instance learns, within a poll
// interval, that a token was revoked, that a principal's earlier tokens are
// void (suspended, revoked, deleted), or that the signing keys changed.
//
// Writers add rows inside the transaction that makes the change. Each
// instance polls for rows created since its last poll (with an overlap,
// because rows from concurrent transactions can become visible out of order)
// and keeps the unexpired ones in memory, so checking a token is a map lookup.
import type { Logger } from "pino";
import type { Prisma, PrismaClient } from "../../gen/prisma/client.js";
import type { Clock } from "./clock.js";
import type { BrokerMetrics } from "./metrics.js";

export type RevocationKind = "token" | "principal" | "api_key" | "signing_keys" | "kms_key";

export interface RevocationEntry {
  readonly kind: RevocationKind;
  /** A `jti`, a principal id, an API key id, a KMS key id, or `*` for signing keys. */
  readonly subject: string;
  /**
   * For principals: tokens issued before this are void. Without it the entry
   * only tells instances to drop what they cached (e.g. grants changed).
   */
  readonly notBefore?: Date;
  /** After this the entry can no longer matter (the last affected token has expired). */
  readonly expiresAt: Date;
}

const overlapMs = 5_000;

/** The latest a token issued up to `now` can expire: the longest lifetime, plus a minute of clock skew. */
export function latestTokenExpiry(now: Date, maxTokenSeconds: number): Date {
  return new Date(now.getTime() + (maxTokenSeconds + 60) * 1000);
}

/**
 * Voids every token `principalId` holds that was issued up to `now` (it was
 * suspended, revoked, or lost a grant), for as long as such a token can live.
 */
export function principalCutoff(principalId: string, now: Date, maxTokenSeconds: number): RevocationEntry {
  return {
    kind: "principal",
    subject: principalId,
    notBefore: now,
    expiresAt: latestTokenExpiry(now, maxTokenSeconds),
  };
}

export class RevocationFeed {
  readonly #revokedTokens = new Map<string, number>();
  readonly #principalCutoffs = new Map<string, { notBefore: number; expiresAt: number }>();
  readonly #listeners = new Set<(entry: RevocationEntry) => void>();
  #since = new Date(0);
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;

  constructor(
    private readonly deps: {
      prisma: PrismaClient;
      clock: Clock;
      log: Logger;
      pollMs: number;
      onSigningKeysChanged: () => Promise<void>;
      metrics?: Pick<BrokerMetrics, "feedPolled" | "feedPollFailed" | "feedEntryApplied">;
    },
  ) {}

  /** Writes an entry in the caller's transaction; call `apply` after commit for this instance. */
  static async publish(tx: Prisma.TransactionClient, entry: RevocationEntry): Promise<void> {
    await tx.revocationEvent.create({
      data: {
        kind: entry.kind,
        subject: entry.subject,
        notBefore: entry.notBefore ?? null,
        expiresAt: entry.expiresAt,
      },
    });
  }

  async start(): Promise<void> {
    await this.poll();
    this.#timer = setInterval(() => {
      this.#polling ??= this.poll()
        .catch((error) => {
          this.deps.metrics?.feedPollFailed();
          this.deps.log.warn({ err: error }, "revocation feed poll failed");
        })
        .finally(() => {
          this.#polling = undefined;
        });
    }, this.deps.pollMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#polling;
  }

  async poll(): Promise<void> {
    const started = performance.now();
    const now = this.deps.clock.now();
    const first = this.#since.getTime() === 0;
    // The window is in database time (createdAt is set by the database).
    const rows = await this.deps.prisma.revocationEvent.findMany({
      where: { createdAt: { gte: new Date(this.#since.getTime() - overlapMs) }, expiresAt: { gt: now } },
      orderBy: { id: "asc" },
    });
    let keysChanged = false;
    for (const row of rows) {
      if (row.createdAt > this.#since) {
        if (!first) this.deps.metrics?.feedEntryApplied(row.createdAt, now);
        this.#since = row.createdAt;
      }
      // At start the caller loads the keys itself; later any key event reloads
      // them (the overlap may reload twice, which is harmless).
      if (row.kind === "signing_keys") keysChanged = !first;
      else this.apply(row as RevocationEntry);
    }
    if (first && this.#since.getTime() === 0) this.#since = new Date(1);
    if (keysChanged) await this.deps.onSigningKeysChanged();
    this.#prune(now.getTime());
    this.deps.metrics?.feedPolled(started);
  }

  /** Calls `listener` for every entry this instance learns of (caches drop what it names). */
  subscribe(listener: (entry: RevocationEntry) => void): void {
    this.#listeners.add(listener);
  }

  /** Takes an entry into this instance's view at once. */
  apply(entry: RevocationEntry): void {
    for (const listener of this.#listeners) listener(entry);
    if (entry.kind === "token") {
      this.#revokedTokens.set(entry.subject, entry.expiresAt.getTime());
    } else if (entry.kind === "principal" && entry.notBefore) {
      const current = this.#principalCutoffs.get(entry.subject);
      const notBefore = Math.max(entry.notBefore.getTime(), current?.notBefore ?? 0);
      this.#principalCutoffs.set(entry.subject, { notBefore, expiresAt: entry.expiresAt.getTime() });
    }
  }

  /** Why a token with these claims is void, or undefined when it is not. */
  revocationOf(claims: { jti: string; sub: string; iat: number }): string | undefined {
    if (this.#revokedTokens.has(claims.jti)) return `token ${claims.jti} is revoked`;
    const cutoff = this.#principalCutoffs.get(claims.sub);
    // iat has whole seconds: a token from the cutoff's own second is void too.
    if (cutoff && claims.iat * 1000 <= cutoff.notBefore)
      return `principal ${claims.sub} was suspended or revoked after issue`;
    return undefined;
  }

  #prune(now: number): void {
    for (const [jti, expiresAt] of this.#revokedTokens) if (expiresAt <= now) this.#revokedTokens.delete(jti);
    for (const [id, cutoff] of this.#principalCutoffs) if (cutoff.expiresAt <= now) this.#principalCutoffs.delete(id);
  }
}
