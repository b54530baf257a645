// The authentication seam. Each Authenticator recognises one kind of
// credential; the chain asks them in turn. An authenticator returns undefined
// for a credential that is not its kind and throws `unauthenticated` for one
// that is its kind but bad. API keys are the only kind so far; broker tokens
// slot in as another Authenticator.

import type { Caller } from "../core/caller.js";
import { unauthenticated } from "../core/errors/domain-error.js";

export interface Credentials {
  /** The credential after `Bearer ` or `DPoP `, if any. */
  readonly bearer: string | undefined;
  /** Which scheme carried it: a DPoP-bound token must come as `DPoP` (RFC 9449 §7.1). */
  readonly scheme: "bearer" | "dpop" | undefined;
  readonly headers: Headers;
  /** HTTP method and public URL of the call, for DPoP `htm`/`htu`. */
  readonly method: string;
  readonly url: string;
}

export interface Authenticator {
  authenticate(credentials: Credentials): Promise<Caller | undefined>;
}

/** Largest Authorization header considered; longer ones are refused unread. */
const maxAuthorizationLength = 8192;

export function readCredentials(headers: Headers, call: { method: string; url: string }): Credentials {
  const authorization = headers.get("authorization") ?? undefined;
  if (authorization === undefined) return { bearer: undefined, scheme: undefined, headers, ...call };
  if (authorization.length > maxAuthorizationLength) throw unauthenticated("authorization header too long");
  const match = /^(Bearer|DPoP) +(\S+) *$/i.exec(authorization);
  if (!match) throw unauthenticated("authorization header is not a Bearer or DPoP credential");
  const scheme = (match[1] as string).toLowerCase() as "bearer" | "dpop";
  return { bearer: match[2], scheme, headers, ...call };
}

export function authenticatorChain(authenticators: readonly Authenticator[]): Authenticator {
  return {
    async authenticate(credentials) {
      if (credentials.bearer === undefined) return undefined;
      for (const authenticator of authenticators) {
        const caller = await authenticator.authenticate(credentials);
        if (caller) return caller;
      }
      throw unauthenticated("credential not recognised by any authenticator");
    },
  };
}
