// People signing in on the broker's own pages (the device flow's
// verification page, the authorization endpoint's sign-in): one password
// check, one per-account backoff and one session store for both, so a
// guesser gains nothing by switching page.
//
// - A password is checked against every account its name stands for, each
//   unless it must wait at this address (auth/sign-in-backoff.ts); a name
//   standing for no account is checked against a decoy hash, so neither
//   timing nor answers tell it apart. The per-address failure limit
//   (failed-authentications.ts) is the caller's, as for every credential.
// - A session is a random secret in an `HttpOnly`, `SameSite=Lax` cookie
//   (`Secure` on TLS) scoped to the page's own path; only its hash is stored,
//   beside the session's CSRF token.
// - Pages go out with a strict CSP (no script, nothing from elsewhere, forms
//   only to this origin unless a page names where it may post or redirect),
//   no framing, no referrer, no caching.
import { createHash } from "node:crypto";
import { parse as parseCookies, serialize as serializeCookie } from "cookie";
import { verifyPassword } from "../auth/passwords.js";
import type { SignInBackoff } from "../auth/sign-in-backoff.js";
import type { CallOrigin } from "../core/call.js";
import type { Caller } from "../core/caller.js";
import { clientNetwork } from "../core/client-network.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError } from "../core/errors/domain-error.js";
import type { NodeServerRequest, NodeServerResponse } from "../core/http.js";
import { maxSignInCandidates, type SignInAccount, signInAccounts } from "../people/index.js";
import { base62Alphabet, randomText } from "../protocol/random-text.js";
import { ScopeSet } from "../protocol/scope.js";

export const sessionSeconds = 3_600;

const sha256 = (text: string) => createHash("sha256").update(text).digest("base64url");

/** The value of one cookie the browser sent, or "" when it sent none. */
export function cookieOf(req: NodeServerRequest, name: string): string {
  return parseCookies(req.headers.cookie ?? "")[name] ?? "";
}

/** A signed-in person, with their current grants, and their session's CSRF token. */
export interface WebSession {
  readonly caller: Caller;
  readonly csrf: string;
}

export type PasswordCheck = { person: SignInAccount | undefined; reason: string } | DomainError;

export interface WebSignIn {
  /** A cookie of a page under `path`: never script-readable, not sent cross-site, over TLS never in the clear. */
  cookie(name: string, value: string, maxAgeSeconds: number, path: string): string;
  /** The person of the session in cookie `name`; undefined without a live session. */
  signedIn(req: NodeServerRequest, name: string): Promise<WebSession | undefined>;
  /** The account `name` and `password` sign in to, with per-account slowing (see the top of this file). */
  checkPassword(site: CallOrigin, tenantName: string, name: string, password: string): Promise<PasswordCheck>;
  /** Starts a session for `person`; returns the secret for its cookie. */
  startSession(person: SignInAccount): Promise<string>;
  /** Ends the session in cookie `name` (the row goes). */
  endSession(req: NodeServerRequest, name: string): Promise<void>;
}

export function webSignIn(ctx: BrokerContext, backoff: SignInBackoff): WebSignIn {
  return {
    cookie: (name, value, maxAge, path) =>
      serializeCookie(name, value, {
        path,
        httpOnly: true,
        sameSite: "lax",
        secure: ctx.config.tls !== undefined,
        maxAge,
      }),

    async signedIn(req, name) {
      const secret = cookieOf(req, name);
      if (!secret || secret.length > 100) return undefined;
      const session = await ctx.prisma.webSession.findUnique({ where: { id: sha256(secret) } });
      if (!session || session.expiresAt <= ctx.clock.now()) return undefined;
      const person = await ctx.prisma.principal.findUnique({
        where: { id: session.principalId },
        include: { grants: { select: { scope: true } } },
      });
      if (person?.status !== "active") return undefined;
      return {
        csrf: session.csrfToken,
        caller: {
          principalId: person.id,
          tenantId: person.tenantId,
          kind: person.kind,
          scopes: new ScopeSet(person.grants.map((g) => g.scope)),
          credentialType: "web_session",
          credentialId: session.id.slice(0, 12),
          // Signed in with their password: the person's whole standing.
          applicationScopes: "all" as const,
        },
      };
    },

    async checkPassword(site, tenantName, name, password) {
      const accounts = await signInAccounts(ctx.prisma, { tenantName, name });
      const keys = accounts.length > 0 ? accounts.map((a) => a.principalId) : [`name ${tenantName}/${name}`];
      const open: string[] = [];
      let waiting: DomainError | undefined;
      // The backoff counts per account and client network (an IPv6 client by its /64).
      const network = clientNetwork(site.clientAddress);
      const checks = await Promise.allSettled(keys.map((key) => backoff.refuseIfWaiting(key, network)));
      for (const [i, check] of checks.entries()) {
        if (check.status === "fulfilled") open.push(keys[i] as string);
        else if (check.reason instanceof DomainError) waiting ??= check.reason;
        else throw check.reason;
      }
      if (open.length === 0 && waiting) return waiting;
      const candidates = accounts.filter((a) => open.includes(a.principalId)).slice(0, maxSignInCandidates);
      const matched: SignInAccount[] = [];
      if (candidates.length === 0) await verifyPassword(password, undefined);
      for (const account of candidates) if (await verifyPassword(password, account.passwordHash)) matched.push(account);
      if (matched.length === 1) {
        await backoff.recordSuccess(matched[0]?.principalId ?? "", network);
        return { person: matched[0], reason: "" };
      }
      if (matched.length > 1) return { person: undefined, reason: "AMBIGUOUS_ACCOUNT" };
      await Promise.all(open.map((key) => backoff.recordFailure(key, network)));
      return { person: undefined, reason: "WRONG_CREDENTIALS" };
    },

    async startSession(person) {
      const secret = randomText(base62Alphabet, 43);
      await ctx.prisma.webSession.create({
        data: {
          id: sha256(secret),
          principalId: person.principalId,
          tenantId: person.tenantId,
          csrfToken: randomText(base62Alphabet, 32),
          expiresAt: new Date(ctx.clock.now().getTime() + sessionSeconds * 1000),
        },
      });
      return secret;
    },

    async endSession(req, name) {
      await ctx.prisma.webSession.deleteMany({ where: { id: sha256(cookieOf(req, name)) } });
    },
  };
}

/**
 * Writes one page. `formAction` lists where the page's forms may post and
 * be redirected to besides this origin (CSP form-action also governs the
 * redirect after a post); `signIn` is the form a 401 names (RFC 9110 §11.6.1;
 * browsers show no dialog for this scheme).
 */
export async function sendPage(
  res: NodeServerResponse,
  status: number,
  page: Promise<string>,
  options: { signIn: string; formAction?: readonly string[]; headers?: Record<string, string | string[]> },
): Promise<void> {
  const body = await page;
  const formAction = ["'self'", ...(options.formAction ?? [])].join(" ");
  res.writeHead(status, {
    ...(status === 401 ? { "www-authenticate": `Cookie realm="aegis", form-action="${options.signIn}"` } : {}),
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "content-security-policy": `default-src 'none'; style-src 'unsafe-inline'; form-action ${formAction}; frame-ancestors 'none'`,
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    ...options.headers,
  });
  res.end(body);
}
