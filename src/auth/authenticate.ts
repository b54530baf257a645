// The authentication seam. Each Authenticator recognises one kind of
// credential; the chain asks them in turn. An authenticator returns undefined
// for a credential that is not its kind and throws `unauthenticated` for one
// that is its kind but bad. API keys are the only kind so far; broker tokens
// slot in as another Authenticator.
import { unauthenticated } from "../errors/domain-error.js";
import type { Caller } from "./caller.js";

export interface Credentials {
  /** The credential after `Bearer `, if any. */
  readonly bearer: string | undefined;
  readonly headers: Headers;
}

export interface Authenticator {
  authenticate(credentials: Credentials): Promise<Caller | undefined>;
}

/** Largest Authorization header considered; longer ones are refused unread. */
const maxAuthorizationLength = 8192;

export function readCredentials(headers: Headers): Credentials {
  const authorization = headers.get("authorization") ?? undefined;
  if (authorization === undefined) return { bearer: undefined, headers };
  if (authorization.length > maxAuthorizationLength) throw unauthenticated("authorization header too long");
  const match = /^Bearer +(\S+) *$/i.exec(authorization);
  if (!match) throw unauthenticated("authorization header is not a Bearer credential");
  return { bearer: match[1], headers };
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
