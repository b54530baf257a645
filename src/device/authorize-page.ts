// The authorization endpoint (RFC 6749 §3.1, §4.1.1-4.1.2) and its pages: a
// public client (the developer portal, an MCP client, a native app) sends
// the person's browser here; the person signs in on the broker's page (the
// same password check, backoff, failure limit and session store as the
// device flow's verification page: web-sign-in.ts), sees who asks, for which
// audience and scopes, and allows all or some of the scopes they hold, or
// denies. The browser then goes back to the client's redirect URI with
// `code`, `state` and `iss` (RFC 9207), or with `error`, `error_description`,
// `state` and `iss` (§4.1.2.1).
//
// - The request is checked in the stages of authorize-request.ts: until the
//   client and its redirect URI are verified, failures are shown here and
//   nothing is redirected to.
// - The request itself travels through the sign-in and consent forms as a
//   hidden field and is checked again, whole, on every step; it only ever
//   comes back as a query of this endpoint.
// - Every form carries a CSRF token: a double-submit cookie for signing in,
//   the session's for the decision. Cookies are scoped to /oauth/authorize.
// - The consent page's CSP lets its form lead to the redirect URI's origin
//   and nowhere else (form-action also governs the redirect after a post).
// - Approvals, denials and refused requests are audited; codes and tokens
//   are never logged, audited or stored in clear.
import type { AuditEntry } from "../core/audit.js";
import type { CallOrigin } from "../core/call.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError } from "../core/errors/domain-error.js";
import { type NodeServerRequest, type NodeServerResponse, readForm } from "../core/http.js";
import type { HttpRoute } from "../core/module.js";
import { sameSecret } from "../crypto/constant-time.js";
import { base62Alphabet, randomText } from "../protocol/random-text.js";
import { issueAuthorizationCode } from "./authorization-code.js";
import {
  AuthorizationError,
  checkForPerson,
  checkRequest,
  type PersonRequest,
  UnverifiedClient,
  type VerifiedClient,
  verifyClient,
} from "./authorize-request.js";
import type { DeviceDeps } from "./device-grant.js";
import { authorizeSignInPage, consentPage, messagePage } from "./verification-views.js";
import { cookieOf, sendPage, sessionSeconds, type WebSession, type WebSignIn } from "./web-sign-in.js";

export interface AuthorizePageDeps {
  readonly ctx: BrokerContext;
  readonly device: DeviceDeps;
  readonly signIn: WebSignIn;
}

const path = "/oauth/authorize";
const sessionCookie = "aegis_authorize_session";
const loginCookie = "aegis_authorize_login";
const maxRequestBytes = 8 * 1024;
const maxFormBytes = 16 * 1024;

export function authorizePage({ ctx, device, signIn }: AuthorizePageDeps): HttpRoute[] {
  const issuer = ctx.config.publicUrl;
  const send = (
    res: NodeServerResponse,
    status: number,
    page: Promise<string>,
    options: { formAction?: readonly string[]; headers?: Record<string, string | string[]> } = {},
  ) => sendPage(res, status, page, { signIn: `${path}/login`, ...options });
  const audit = (site: CallOrigin, entry: Omit<AuditEntry, "requestId" | "client">) =>
    ctx.audit.append({ requestId: site.requestId, client: site.client, ...entry });

  /** Where a verified request's answer goes: the redirect URI with the answer and the issuer (RFC 9207) in its query. */
  function back(res: NodeServerResponse, request: VerifiedClient, answer: Record<string, string>) {
    const url = new URL(request.redirectUri);
    for (const [name, value] of Object.entries(answer)) url.searchParams.append(name, value);
    if (request.state !== undefined) url.searchParams.append("state", request.state);
    url.searchParams.append("iss", issuer);
    res.writeHead(303, { location: url.href, "cache-control": "no-store", "referrer-policy": "no-referrer" });
    res.end();
  }

  /** The client could not be verified: said here, never redirected (RFC 6749 §4.1.2.1). */
  async function unverified(res: NodeServerResponse, site: CallOrigin, error: UnverifiedClient, who?: WebSession) {
    await audit(site, {
      tenantId: who?.caller.tenantId ?? null,
      actorId: who?.caller.principalId ?? null,
      action: "authorize.request",
      target: "",
      outcome: "denied",
      reason: `INVALID_CLIENT ${error.message}`.slice(0, 500),
    });
    await send(
      res,
      400,
      messagePage(
        "This sign-in link is not valid",
        `The application that sent you here made a request the broker cannot accept: ${error.message}. You were not sent back to it.`,
        { error: true },
      ),
    );
  }

  /** A verified request refused: the error goes back to the client. */
  async function refused(
    res: NodeServerResponse,
    site: CallOrigin,
    request: VerifiedClient,
    error: AuthorizationError,
    who?: WebSession,
  ) {
    await audit(site, {
      tenantId: who?.caller.tenantId ?? null,
      actorId: who?.caller.principalId ?? null,
      action: "authorize.request",
      target: request.client.id,
      outcome: "denied",
      reason: `${error.error} ${error.message}`.slice(0, 500),
    });
    back(res, request, { error: error.error, error_description: error.description });
  }

  /**
   * Runs the checks for the request in `query` as far as the signed-in
   * person (if any) lets them go; answers itself when a check fails.
   */
  async function checked(
    res: NodeServerResponse,
    site: CallOrigin,
    query: URLSearchParams,
    who: WebSession | undefined,
  ): Promise<{ verified: VerifiedClient; request?: PersonRequest } | undefined> {
    let verified: VerifiedClient;
    try {
      verified = await verifyClient(device, query);
    } catch (error) {
      if (!(error instanceof UnverifiedClient)) throw error;
      await unverified(res, site, error, who);
      return undefined;
    }
    try {
      const request = checkRequest(verified, query, issuer);
      if (!who) return { verified };
      return { verified, request: await checkForPerson(device, request, who.caller) };
    } catch (error) {
      if (!(error instanceof AuthorizationError)) throw error;
      await refused(res, site, verified, error, who);
      return undefined;
    }
  }

  function loginForm(res: NodeServerResponse, request: string, clientName: string, error = "", status = 200) {
    const token = randomText(base62Alphabet, 32);
    return send(res, status, authorizeSignInPage({ loginCsrf: token, request, clientName, error }), {
      headers: { "set-cookie": signIn.cookie(loginCookie, token, 600, path) },
    });
  }

  async function show(req: NodeServerRequest, res: NodeServerResponse, site: CallOrigin) {
    const raw = (req.url ?? "").split("?")[1] ?? "";
    if (raw.length > maxRequestBytes) {
      return unverified(res, site, new UnverifiedClient("the request is too large"));
    }
    const query = new URLSearchParams(raw);
    const who = await signIn.signedIn(req, sessionCookie);
    const result = await checked(res, site, query, who);
    if (!result) return;
    if (!who || !result.request) return loginForm(res, query.toString(), result.verified.client.name);
    const { request } = result;
    return send(
      res,
      200,
      consentPage({
        clientName: request.client.name,
        returnTo: new URL(request.redirectUri).origin,
        audience: request.audience,
        scopes: request.requested.map((scope) => ({ scope, held: request.held.includes(scope) })),
        csrf: who.csrf,
        request: query.toString(),
      }),
      { formAction: [formActionSource(request.redirectUri)] },
    );
  }

  async function login(req: NodeServerRequest, res: NodeServerResponse, site: CallOrigin, form: URLSearchParams) {
    const query = new URLSearchParams((form.get("request") ?? "").slice(0, maxRequestBytes));
    const verified = await checked(res, site, query, undefined);
    if (!verified) return;
    const clientName = verified.verified.client.name;
    const request = query.toString();
    const username = (form.get("username") ?? "").toLowerCase().slice(0, 254);
    const denied = (reason: string, tenantId: string | null = null, actorId: string | null = null) =>
      audit(site, { tenantId, actorId, action: "authorize.login", target: username, outcome: "denied", reason });
    if (!sameSecret(form.get("login_csrf") ?? "", cookieOf(req, loginCookie))) {
      await denied("CSRF_MISMATCH");
      return loginForm(res, request, clientName, "Your sign-in form expired. Please try again.", 403);
    }
    const tooMany = async (error: DomainError) => {
      await denied(error.auditReason);
      return send(res, 429, messagePage("Too many attempts", error.message, { error: true }), {
        headers: { ...error.options.headers },
      });
    };
    try {
      await device.authFailures.refuseIfOver(site.clientAddress);
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      return tooMany(error);
    }
    const tenantName = (form.get("tenant") ?? "").trim().toLowerCase().slice(0, 63);
    const checkedPassword = await signIn.checkPassword(site, tenantName, username, form.get("password") ?? "");
    if (checkedPassword instanceof DomainError) return tooMany(checkedPassword);
    const { person, reason } = checkedPassword;
    if (person?.status !== "active") {
      await denied(person ? "PRINCIPAL_NOT_ACTIVE" : reason, person?.tenantId, person?.principalId);
      await device.authFailures.record(site.clientAddress);
      const message =
        reason === "AMBIGUOUS_ACCOUNT"
          ? "This name is in more than one tenant: enter your tenant too."
          : "Wrong username or password.";
      return loginForm(res, request, clientName, message, 401);
    }
    const secret = await signIn.startSession(person);
    await audit(site, {
      tenantId: person.tenantId,
      actorId: person.principalId,
      action: "authorize.login",
      target: username,
      outcome: "success",
      reason: `client ${verified.verified.client.id}`,
    });
    res.writeHead(303, {
      location: `${path}?${request}`,
      "cache-control": "no-store",
      "set-cookie": [
        signIn.cookie(sessionCookie, secret, sessionSeconds, path),
        signIn.cookie(loginCookie, "", 0, path),
      ],
    });
    res.end();
  }

  async function decide(req: NodeServerRequest, res: NodeServerResponse, site: CallOrigin, form: URLSearchParams) {
    const who = await signIn.signedIn(req, sessionCookie);
    const notAllowed = async (reason: string, status: number, message: string) => {
      await audit(site, {
        tenantId: who?.caller.tenantId ?? null,
        actorId: who?.caller.principalId ?? null,
        action: "authorize.approve",
        target: "",
        outcome: "denied",
        reason,
      });
      await send(res, status, messagePage("Not allowed", message, { error: true }));
    };
    if (!who) return notAllowed("NO_SESSION", 401, "Sign in first: go back to the application and start again.");
    if (!sameSecret(form.get("csrf") ?? "", who.csrf)) {
      return notAllowed("CSRF_MISMATCH", 403, "This form is not valid any more. Go back and try again.");
    }
    const query = new URLSearchParams((form.get("request") ?? "").slice(0, maxRequestBytes));
    const result = await checked(res, site, query, who);
    if (!result?.request) return;
    const { request } = result;
    const auditBase = {
      requestId: site.requestId,
      tenantId: who.caller.tenantId,
      actorId: who.caller.principalId,
      client: site.client,
    };
    if (form.get("decision") !== "approve") {
      await ctx.audit.append({
        ...auditBase,
        action: "authorize.deny",
        target: request.client.id,
        outcome: "success",
        reason: `client ${request.client.id}`,
      });
      return back(res, request, { error: "access_denied", error_description: "the person denied the request" });
    }
    // What was asked, the person holds, and left ticked: never more.
    const ticked = new Set(form.getAll("scope"));
    const scopes = request.held.filter((s) => ticked.has(s));
    const code = await issueAuthorizationCode(
      device,
      auditBase,
      request,
      who.caller.principalId,
      who.caller.tenantId,
      scopes,
    );
    back(res, request, { code });
  }

  const post =
    (handler: typeof login) =>
    async (req: NodeServerRequest, res: NodeServerResponse, site: CallOrigin): Promise<void> => {
      const form = await readForm(req, maxFormBytes);
      if (form) await handler(req, res, site, form);
      else await send(res, 413, messagePage("Too large", "That form was too large.", { error: false }));
    };
  return [
    { method: "GET", path, handle: show },
    { method: "POST", path: `${path}/login`, handle: post(login) },
    { method: "POST", path: `${path}/decide`, handle: post(decide) },
  ] satisfies HttpRoute[];
}

/**
 * The CSP source that lets a form lead to `redirectUri`: its origin for
 * http(s), its scheme for a private-use scheme (RFC 8252 §7.1).
 */
function formActionSource(redirectUri: string): string {
  const url = new URL(redirectUri);
  return url.protocol === "http:" || url.protocol === "https:" ? url.origin : url.protocol;
}
