// What the token functions are given: the key ring, the revocation feed,
// the replay guard and limits, as one value the composition root builds; and
// the cache of tokens already verified under the current key ring.
import type { PrismaClient } from "../../gen/prisma/client.js";
import type { DpopNonces } from "../auth/dpop-nonce.js";
import type { FailedAuthentications } from "../auth/failed-authentications.js";
import type { ReplayGuard } from "../auth/replay-guard.js";
import type { AuditTrail } from "../core/audit.js";
import type { Clock } from "../core/clock.js";
import type { Config } from "../core/config.js";
import type { RateLimiter } from "../core/rate-limit.js";
import type { RevocationFeed } from "../core/revocation-feed.js";
import type { Tracing } from "../core/tracing.js";
import type { AccessTokenClaims } from "../protocol/access-token.js";
import type { KeyRing } from "./signing-keys.js";

export interface TokenDeps {
  readonly prisma: PrismaClient;
  readonly audit: AuditTrail;
  readonly clock: Clock;
  readonly keyRing: KeyRing;
  readonly feed: RevocationFeed;
  readonly replay: ReplayGuard;
  readonly nonces: DpopNonces | undefined;
  readonly mintLimiter: RateLimiter;
  /** Failed authentications per address, shared with every other way in. */
  readonly authFailures: FailedAuthentications;
  readonly revokeLimiter: RateLimiter;
  readonly config: Pick<Config, "publicUrl" | "tokenLifetime">;
  readonly verified: VerifiedTokens;
  /** Child spans of the calls (token signing); absent when tracing is off. */
  readonly tracing?: Tracing;
}

/**
 * Tokens whose signature and claims were already verified under the current
 * key ring. A token is immutable, so re-verifying its signature on every use
 * only burns CPU; expiry, audience and revocation are still checked on every
 * hit, and a key ring reload (rotation, retirement) voids every entry.
 */
export class VerifiedTokens {
  readonly #entries = new Map<string, { claims: AccessTokenClaims; version: number }>();
  constructor(private readonly max = 10_000) {}

  get(token: string, version: number): AccessTokenClaims | undefined {
    const entry = this.#entries.get(token);
    return entry?.version === version ? entry.claims : undefined;
  }

  set(token: string, version: number, claims: AccessTokenClaims): void {
    if (this.#entries.size >= this.max) this.#entries.delete(this.#entries.keys().next().value as string);
    this.#entries.set(token, { claims, version });
  }
}

export const clockToleranceSeconds = 5;
