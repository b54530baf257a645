// The SDK's cache of a broker's JWKS, fetched from its URL. It exists so that
// a key the broker retires stops being accepted within a known time: the
// JWKS response's `Cache-Control: max-age` (60 s from the broker).
//
//   - A fetched set is used while it is younger than its freshness lifetime:
//     `max-age` minus `Age` (RFC 9111 §4.2), 60 s when the response gives
//     none, 0 on `no-store`, `no-cache` or an invalid `max-age`
//     (§4.2.1: invalid freshness information means stale), at most 600 s.
//   - An older set is fetched again before the next verification. A set
//     is kept for at least the 30 s cooldown, so a lifetime under 30 s
//     (`no-store`) in effect lasts 30 s.
//   - A token whose `kid` the set lacks triggers one refetch, at most once
//     per cooldown, so random `kid`s cannot make a verifier hammer the broker.
//   - Fail closed: while a stale set cannot be fetched again, no key is
//     served (every token is refused) and a new fetch is tried at most once
//     a second. No grace period: an outage of the JWKS endpoint (or an
//     attacker blocking it) cannot stretch the time a retired key is
//     accepted beyond the set's lifetime.
//
// Age is judged on the caller's clock (`now`, in ms), so verifications at an
// injected time see the cache as it would be then. A clock that moved back
// past the fetch makes the set stale. Key matching is jose's
// `createLocalJWKSet`, made once per fetched set, so each key is imported
// once per set, not once per verification.
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from "jose";

/** Freshness lifetime when the JWKS response has no `Cache-Control` freshness directive. */
export const defaultMaxAgeSeconds = 60;
/** No set is used longer than this, whatever the response says. */
export const maxMaxAgeSeconds = 600;
/** A set is kept at least this long before it is fetched again, for an unknown `kid` or a short lifetime. */
export const cooldownMs = 30_000;
/** After a failed fetch, no new one for this long. */
export const retryAfterFailureMs = 1_000;
/** A JWKS fetch that takes longer fails. */
export const fetchTimeoutMs = 5_000;

const deltaSeconds = /^[0-9]+$/;

/**
 * How long, in seconds, a JWKS response may be used: its `Cache-Control`
 * `max-age` (RFC 9111 §5.2.2.1) less its `Age` (§5.1), within
 * [0, {@link maxMaxAgeSeconds}]. Without `max-age`, {@link defaultMaxAgeSeconds};
 * `no-store`, `no-cache`, a repeated or malformed `max-age`: 0.
 */
export function freshnessLifetimeSeconds(headers: Headers): number {
  let maxAge: number | undefined;
  for (const directive of (headers.get("cache-control") ?? "").split(",")) {
    const eq = directive.indexOf("=");
    const name = (eq < 0 ? directive : directive.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? undefined : directive.slice(eq + 1).trim();
    if (name === "no-store" || name === "no-cache") return 0;
    if (name === "max-age") {
      if (maxAge !== undefined || value === undefined || !deltaSeconds.test(value)) return 0;
      maxAge = Number(value);
    }
  }
  // Time the response already spent in caches on the way (§4.2.3); ignored when malformed.
  const age = (headers.get("age") ?? "").trim();
  const aged = deltaSeconds.test(age) ? Number(age) : 0;
  return Math.max(0, Math.min(maxAge ?? defaultMaxAgeSeconds, maxMaxAgeSeconds) - aged);
}

interface FetchedSet {
  readonly keys: JWTVerifyGetKey;
  /** Caller's clock, ms, when the fetch that produced the set began. */
  readonly fetchedAt: number;
  readonly lifetimeMs: number;
}

/** `now` is within [since, since + duration) on the caller's clock. */
function within(now: number, since: number | undefined, duration: number): boolean {
  return since !== undefined && now >= since && now - since < duration;
}

export class JwksCache {
  readonly #url: string;
  readonly #fetch: typeof fetch;
  #set: FetchedSet | undefined;
  #failedAt: number | undefined;
  #pending: Promise<FetchedSet> | undefined;

  /** `fetchImpl` is for tests; the global `fetch` otherwise. */
  constructor(url: string, fetchImpl: typeof fetch = fetch) {
    this.#url = new URL(url).href;
    this.#fetch = fetchImpl;
  }

  /** A jose key lookup that judges the cache at `now` (ms on the caller's clock). */
  keysAt(now: number): JWTVerifyGetKey {
    return async (header, token) => {
      const set = await this.#usable(now);
      try {
        return await set.keys(header, token);
      } catch (error) {
        if (!(error instanceof errors.JWKSNoMatchingKey) || !this.#mayFetch(now)) throw error;
        return (await this.#refresh(now)).keys(header, token);
      }
    };
  }

  /** The set to verify with at `now`: the cached one while fresh, else a new one. */
  async #usable(now: number): Promise<FetchedSet> {
    const set = this.#set;
    if (set && within(now, set.fetchedAt, Math.max(set.lifetimeMs, cooldownMs))) return set;
    if (!this.#pending && within(now, this.#failedAt, retryAfterFailureMs)) {
      throw new Error(`no fresh JWKS from ${this.#url}: its last fetch failed; refusing until one succeeds`);
    }
    return this.#refresh(now);
  }

  #mayFetch(now: number): boolean {
    return !within(now, this.#set?.fetchedAt, cooldownMs) && !within(now, this.#failedAt, retryAfterFailureMs);
  }

  /** Fetches the set once for every caller waiting on it; a failure leaves no set usable past its lifetime. */
  #refresh(now: number): Promise<FetchedSet> {
    this.#pending ??= this.#load(now).then(
      (set) => {
        this.#set = set;
        this.#failedAt = undefined;
        this.#pending = undefined;
        return set;
      },
      (error: unknown) => {
        this.#failedAt = now;
        this.#pending = undefined;
        throw new Error(`JWKS ${this.#url} could not be fetched: ${(error as Error).message}`, { cause: error });
      },
    );
    return this.#pending;
  }

  async #load(now: number): Promise<FetchedSet> {
    // Redirects are not followed: the set must come from the URL configured.
    const response = await this.#fetch(this.#url, {
      method: "GET",
      redirect: "manual",
      headers: { accept: "application/json, application/jwk-set+json" },
      signal: AbortSignal.timeout(fetchTimeoutMs),
    });
    if (response.status !== 200) throw new Error(`expected 200 OK, got ${response.status}`);
    const jwks = (await response.json()) as JSONWebKeySet;
    return {
      keys: createLocalJWKSet(jwks),
      fetchedAt: now,
      lifetimeMs: freshnessLifetimeSeconds(response.headers) * 1000,
    };
  }
}
