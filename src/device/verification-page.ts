// The verification page of the device flow (`verification_uri`): a person
// signs in, enters or confirms the user code, sees which client asks, from
// where and for what, and approves all or some of the scopes, or denies.
// Plain HTML forms: no JavaScript, nothing loaded from elsewhere.
//
// Safety: the session cookie holds a random secret (its hash is stored),
// `HttpOnly`, `SameSite=Lax`, `Secure` on TLS, scoped to /device. Every form
// carries a CSRF token: the session's for decisions, a double-submit cookie
// for signing in. A pre-filled code still needs the explicit click.
// Wrong codes and wrong passwords are rate-limited per address and audited.
// The markup is in verification-views.ts, which escapes every value it shows.
import { createHash } from "node:crypto";
import { parse as parseCookies, type SerializeOptions, serialize as serializeCookie } from "cookie";
import type { AuditEntry } from "../core/audit.js";
import type { CallOrigin } from "../core/call.js";
import type { Caller } from "../core/caller.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError } from "../core/errors/domain-error.js";
import { type NodeServerRequest, type NodeServerResponse, readForm } from "../core/http.js";
import type { HttpRoute } from "../core/module.js";
import { sameSecret } from "../crypto/constant-time.js";
import { base62Alphabet, randomText } from "../protocol/random-text.js";
import { ScopeSet } from "../protocol/scope.js";
import { verifyPassword } from "./accounts.js";
import { decideDeviceAuthorization, findPendingByUserCode } from "./approve.js";
import { type DeviceDeps, displayUserCode } from "./device-grant.js";
import { approvalPage, codePage, loginPage, messagePage } from "./verification-views.js";

export interface PageDeps {
  readonly ctx: BrokerContext;
  readonly device: DeviceDeps;
}

type Site = CallOrigin;

const sessionCookie = "aegis_session";
const loginCookie = "aegis_login";
const sessionSeconds = 3_600;
const maxFormBytes = 16 * 1024;

const sha256 = (text: string) => createHash("sha256").update(text).digest("base64url");

/** The value of one cookie the browser sent, or "" when it sent none. */
function cookieOf(req: NodeServerRequest, name: string): string {
  return parseCookies(req.headers.cookie ?? "")[name] ?? "";
}

/** The page's routes: the code form, sign-in and the decision. */
export function verificationPage(deps: PageDeps): HttpRoute[] {
  const { ctx, device } = deps;
  // Both cookies are for this page's own posts only: never script-readable,
  // not sent on cross-site posts, and over TLS never sent in the clear.
  const cookieAttributes: SerializeOptions = {
    path: "/device",
    httpOnly: true,
    sameSite: "lax",
    secure: ctx.config.tls !== undefined,
  };
  const cookie = (name: string, value: string, maxAge: number) =>
    serializeCookie(name, value, { ...cookieAttributes, maxAge });

  const send = async (
    res: NodeServerResponse,
    status: number,
    page: Promise<string>,
    headers: Record<string, string | string[]> = {},
  ) => {
    const body = await page;
    res.writeHead(status, {
      // Every 401 names how to authenticate (RFC 9110 §11.6.1): here, this
      // page's sign-in form. Browsers show no dialog for this scheme.
      ...(status === 401 ? { "www-authenticate": `Cookie realm="aegis", form-action="/device/login"` } : {}),
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "content-security-policy":
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
      "x-frame-options": "DENY",
      "referrer-policy": "no-referrer",
      "x-content-type-options": "nosniff",
      ...headers,
    });
    res.end(body);
  };
  const redirect = (res: NodeServerResponse, location: string, headers: Record<string, string | string[]> = {}) => {
    res.writeHead(303, { location, "cache-control": "no-store", ...headers });
    res.end();
  };
  const audit = (site: Site, entry: Omit<AuditEntry, "requestId" | "client">) =>
    ctx.audit.append({ requestId: site.requestId, client: site.client, ...entry });

  /** The signed-in person, with their current grants; undefined without a live session. */
  async function signedIn(req: NodeServerRequest): Promise<{ caller: Caller; csrf: string } | undefined> {
    const secret = cookieOf(req, sessionCookie);
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
  }

  function loginForm(res: NodeServerResponse, userCode: string, error = "", status = 200) {
    const token = randomText(base62Alphabet, 32);
    return send(res, status, loginPage({ loginCsrf: token, userCode, error }), {
      "set-cookie": cookie(loginCookie, token, 600),
    });
  }

  function codeForm(res: NodeServerResponse, error = "", status = 200) {
    return send(res, status, codePage({ error }));
  }

  async function show(req: NodeServerRequest, res: NodeServerResponse, site: Site, userCode: string) {
    const session = await signedIn(req);
    if (!session) return loginForm(res, userCode);
    if (!userCode) return codeForm(res);
    let row: Awaited<ReturnType<typeof findPendingByUserCode>>;
    try {
      row = await findPendingByUserCode(
        device,
        { address: site.clientAddress, principalId: session.caller.principalId },
        session.caller.tenantId,
        userCode,
      );
    } catch (error) {
      return refuseCode(res, site, session.caller, error);
    }
    const client = await ctx.prisma.oAuthClient.findUnique({ where: { id: row.clientId } });
    return send(
      res,
      200,
      approvalPage({
        clientName: client?.name ?? row.clientId,
        userCode: displayUserCode(row.userCode),
        requesterAddress: row.requesterAddress,
        requesterAgent: row.requesterAgent,
        audience: row.audience,
        scopes: row.scopes.split(" ").filter(Boolean),
        csrf: session.csrf,
      }),
    );
  }

  async function refuseCode(res: NodeServerResponse, site: Site, caller: Caller, error: unknown) {
    if (!(error instanceof DomainError)) throw error;
    await audit(site, {
      tenantId: caller.tenantId,
      actorId: caller.principalId,
      action: "device.code.entry",
      target: "",
      outcome: "denied",
      reason: error.auditReason,
    });
    if (error.code === "resource_exhausted") {
      return send(res, 429, messagePage("Too many attempts", error.message, { error: true }), {
        ...error.options.headers,
      });
    }
    return codeForm(res, "That code is not valid, or it has expired. Check your device and try again.", 404);
  }

  async function login(req: NodeServerRequest, res: NodeServerResponse, site: Site, form: URLSearchParams) {
    const userCode = (form.get("user_code") ?? "").slice(0, 20);
    const csrf = form.get("login_csrf") ?? "";
    if (!sameSecret(csrf, cookieOf(req, loginCookie))) {
      await audit(site, {
        tenantId: null,
        actorId: null,
        action: "device.login",
        target: "",
        outcome: "denied",
        reason: "CSRF_MISMATCH",
      });
      return loginForm(res, userCode, "Your sign-in form expired. Please try again.", 403);
    }
    const username = (form.get("username") ?? "").toLowerCase().slice(0, 64);
    try {
      device.authFailures.refuseIfOver(site.clientAddress);
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      await audit(site, {
        tenantId: null,
        actorId: null,
        action: "device.login",
        target: username,
        outcome: "denied",
        reason: error.auditReason,
      });
      return send(res, 429, messagePage("Too many attempts", error.message, { error: true }));
    }
    const account = await ctx.prisma.localAccount.findUnique({ where: { username } });
    const person = account ? await ctx.prisma.principal.findUnique({ where: { id: account.principalId } }) : null;
    const ok = await verifyPassword(form.get("password") ?? "", account?.passwordHash);
    if (!ok || !person || person.status !== "active") {
      await audit(site, {
        tenantId: person?.tenantId ?? null,
        actorId: person?.id ?? null,
        action: "device.login",
        target: username,
        outcome: "denied",
        reason: ok ? "PRINCIPAL_NOT_ACTIVE" : "WRONG_CREDENTIALS",
      });
      device.authFailures.record(site.clientAddress);
      return loginForm(res, userCode, "Wrong username or password.", 401);
    }
    const secret = randomText(base62Alphabet, 43);
    await ctx.prisma.webSession.create({
      data: {
        id: sha256(secret),
        principalId: person.id,
        tenantId: person.tenantId,
        csrfToken: randomText(base62Alphabet, 32),
        expiresAt: new Date(ctx.clock.now().getTime() + sessionSeconds * 1000),
      },
    });
    await audit(site, {
      tenantId: person.tenantId,
      actorId: person.id,
      action: "device.login",
      target: username,
      outcome: "success",
      reason: "",
    });
    redirect(res, `/device${userCode ? `?user_code=${encodeURIComponent(userCode)}` : ""}`, {
      "set-cookie": [cookie(sessionCookie, secret, sessionSeconds), cookie(loginCookie, "", 0)],
    });
  }

  async function decide(req: NodeServerRequest, res: NodeServerResponse, site: Site, form: URLSearchParams) {
    const session = await signedIn(req);
    const refused = async (reason: string, status: number, message: string) => {
      await audit(site, {
        tenantId: session?.caller.tenantId ?? null,
        actorId: session?.caller.principalId ?? null,
        action: "device.approve",
        target: "",
        outcome: "denied",
        reason,
      });
      await send(res, status, messagePage("Not allowed", message, { error: true }));
    };
    if (!session) return refused("NO_SESSION", 401, "Sign in first.");
    if (!sameSecret(form.get("csrf") ?? "", session.csrf)) {
      return refused("CSRF_MISMATCH", 403, "This form is not valid any more. Go back and try again.");
    }
    const approve = form.get("decision") === "approve";
    try {
      await decideDeviceAuthorization(
        device,
        session.caller,
        {
          requestId: site.requestId,
          tenantId: session.caller.tenantId,
          actorId: session.caller.principalId,
          client: site.client,
        },
        site.clientAddress,
        { userCode: form.get("user_code") ?? "", approve, scopes: form.getAll("scope") },
      );
    } catch (error) {
      if (error instanceof DomainError && (error.code === "not_found" || error.code === "resource_exhausted")) {
        return refuseCode(res, site, session.caller, error);
      }
      if (error instanceof DomainError) return refused(error.auditReason, 403, error.message);
      throw error;
    }
    await send(
      res,
      200,
      approve
        ? messagePage("Device approved", "You can close this window and return to your device.", { error: false })
        : messagePage("Request denied", "The device will not get access. You can close this window.", { error: false }),
    );
  }

  /** A form post: bounded body, then the handler. */
  const post =
    (handler: typeof login) =>
    async (req: NodeServerRequest, res: NodeServerResponse, site: Site): Promise<void> => {
      const form = await readForm(req, maxFormBytes);
      if (form) await handler(req, res, site, form);
      else await send(res, 413, messagePage("Too large", "That form was too large.", { error: false }));
    };
  return [
    {
      method: "GET",
      path: "/device",
      handle: (req, res, site) =>
        show(req, res, site, (new URL(req.url ?? "/", "http://page").searchParams.get("user_code") ?? "").slice(0, 20)),
    },
    { method: "POST", path: "/device/login", handle: post(login) },
    // Not yet a SharedPolicyRoute of ApproveDeviceAuthorization: its caller
    // signs in with a session cookie the pipeline does not authenticate yet,
    // so the page checks the session and audits its refusals itself.
    { method: "POST", path: "/device/decide", handle: post(decide) },
  ] satisfies HttpRoute[];
}
