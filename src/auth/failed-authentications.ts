// One limit on failed authentications per client address, shared by every
// way in: the RPC guard, MintToken's client authentication, the OAuth
// endpoints and the sign-in page. A key guesser who is turned away at one
// door must not find another one open (MintToken and /oauth/token once
// answered 40 bad keys from one address with 40 × 401 and no 429).
//
// Over the limit, credentials are not even looked at: the call is refused
// with resource_exhausted and Retry-After before any lookup. An IPv6 client
// counts by its /64 (core/client-network.ts).
import { clientNetwork } from "../core/client-network.js";
import { DomainError } from "../core/errors/domain-error.js";
import type { RateLimiter } from "../core/rate-limit.js";

export class FailedAuthentications {
  constructor(private readonly limiter: RateLimiter) {}

  /** Refuses at once when `address` is over its limit. */
  refuseIfOver(address: string): Promise<void> {
    return this.limiter.refuseIfOver(clientNetwork(address), "failed authentications");
  }

  /** Counts one failure against `address`. */
  async record(address: string): Promise<void> {
    try {
      await this.limiter.hit(clientNetwork(address), "failed authentications");
    } catch (error) {
      // Over the limit: counted, and the call it belongs to is refused as
      // unauthenticated anyway. Anything else (the shared store is down) is news.
      if (!(error instanceof DomainError && error.code === "resource_exhausted")) throw error;
    }
  }

  /** Runs an authentication for `address`: refused when over the limit, counted when it fails. */
  async check<T>(address: string, authenticate: () => Promise<T>): Promise<T> {
    await this.refuseIfOver(address);
    try {
      return await authenticate();
    } catch (error) {
      if (error instanceof DomainError && error.code === "unauthenticated") await this.record(address);
      throw error;
    }
  }
}
