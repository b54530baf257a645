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
import { createHash, timingSafeEqual } from "node:crypto";
import { parse as parseCookies, type SerializeOptions, serialize as serializeCookie } from "cookie";
import type { AuditEntry } from "../audit/audit-chain.js";
import type { Caller } from "../auth/caller.js";
import type { BrokerContext } from "../broker-context.js";
import { base62Alphabet, randomText } from "../crypto/random-text.js";
import { DomainError } from "../errors/domain-error.js";
import { ScopeSet } from "../policy/scope.js";
import { type NodeServerRequest, type NodeServerResponse, readForm } from "../server/node-http.js";
import { verifyPassword } from "./accounts.js";
import { type DeviceDeps, decideDeviceAuthorization, displayUserCode, findPendingByUserCode } from "./device-flow.js";

export interface PageDeps {
  readonly ctx: BrokerContext;
  readonly device: DeviceDeps;
}

interface Site {
  readonly requestId: string;
  readonly client: string;
  readonly clientAddress: string;
}

const sessionCookie = "aegis_session";
const loginCookie = "aegis_login";
const sessionSeconds = 3_600;
const maxFormBytes = 16 * 1024;

const sha256 = (text: string) => createHash("sha256").update(text).digest("base64url");

function html(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

/** The value of one cookie the browser sent, or "" when it sent none. */
function cookieOf(req: NodeServerRequest, name: string): string {
  return parseCookies(req.headers.cookie ?? "")[name] ?? "";
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${html(title)} – Aegis</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;color:#111}
label{display:block;margin:.75rem 0 .25rem}input[type=text],input[type=password]{width:100%;padding:.5rem;font:inherit}
button{font:inherit;padding:.5rem 1rem;margin:1rem .5rem 0 0}.error{color:#a00}code{font-size:1.1em}
dt{font-weight:600}dd{margin:0 0 .5rem}fieldset{border:1px solid #999}</style></head>
<body><main><h1>${html(title)}</h1>${body}</main></body></html>`;
}

export function verificationPage(deps: PageDeps) {
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

  const send = (
    res: NodeServerResponse,
    status: number,
    html: string,
    headers: Record<string, string | string[]> = {},
  ) => {
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
    res.end(html);
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
      },
    };
  }

  function loginForm(res: NodeServerResponse, userCode: string, error = "", status = 200) {
    const token = randomText(base62Alphabet, 32);
    send(
      res,
      status,
      page(
        "Sign in to approve a device",
        `${error ? `<p class="error" role="alert">${html(error)}</p>` : ""}
<form method="post" action="/device/login">
<input type="hidden" name="login_csrf" value="${token}"><input type="hidden" name="user_code" value="${html(userCode)}">
<label for="username">Username</label><input type="text" id="username" name="username" autocomplete="username" required>
<label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>`,
      ),
      { "set-cookie": cookie(loginCookie, token, 600) },
    );
  }

  function codeForm(res: NodeServerResponse, error = "", status = 200) {
    send(
      res,
      status,
      page(
        "Enter the code shown on your device",
        `${error ? `<p class="error" role="alert">${html(error)}</p>` : ""}
<form method="get" action="/device"><label for="user_code">Code</label>
<input type="text" id="user_code" name="user_code" autocomplete="off" autocapitalize="characters" placeholder="XXXX-XXXX" required>
<button type="submit">Continue</button></form>`,
      ),
    );
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
    const scopes = row.scopes.split(" ").filter(Boolean);
    send(
      res,
      200,
      page(
        "Approve this device?",
        `<p><strong>${html(client?.name ?? row.clientId)}</strong> asks to act as you.</p>
<dl><dt>Code</dt><dd><code>${displayUserCode(row.userCode)}</code> – check it matches your device</dd>
<dt>Requested from</dt><dd>${html(row.requesterAddress)}${row.requesterAgent ? ` (${html(row.requesterAgent)})` : ""}</dd>
<dt>For</dt><dd>${html(row.audience)}</dd></dl>
<form method="post" action="/device/decide">
<input type="hidden" name="csrf" value="${html(session.csrf)}"><input type="hidden" name="user_code" value="${displayUserCode(row.userCode)}">
<fieldset><legend>Scopes</legend>${
          scopes.length
            ? scopes
                .map(
                  (s, i) =>
                    `<label><input type="checkbox" name="scope" value="${html(s)}" id="scope${i}" checked> <code>${html(s)}</code></label>`,
                )
                .join("\n")
            : "<p>No scopes: the device will only know who you are.</p>"
        }</fieldset>
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button></form>`,
      ),
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
      return send(res, 429, page("Too many attempts", `<p class="error" role="alert">${html(error.message)}</p>`), {
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
      return send(res, 429, page("Too many attempts", `<p class="error" role="alert">${html(error.message)}</p>`));
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
      send(res, status, page("Not allowed", `<p class="error" role="alert">${html(message)}</p>`));
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
    send(
      res,
      200,
      page(
        approve ? "Device approved" : "Request denied",
        approve
          ? "<p>You can close this window and return to your device.</p>"
          : "<p>The device will not get access. You can close this window.</p>",
      ),
    );
  }

  /** Handles the page's routes; false when the path is not one of them. */
  return async (req: NodeServerRequest, res: NodeServerResponse, site: Site): Promise<boolean> => {
    const url = new URL(req.url ?? "/", "http://page");
    if (url.pathname === "/device" && req.method === "GET") {
      await show(req, res, site, (url.searchParams.get("user_code") ?? "").slice(0, 20));
      return true;
    }
    const post = { "/device/login": login, "/device/decide": decide }[url.pathname];
    if (!post) return false;
    if (req.method !== "POST") {
      send(res, 405, page("Not allowed", "<p>Use the form.</p>"), { allow: "POST" });
      return true;
    }
    const form = await readForm(req, maxFormBytes);
    if (form) await post(req, res, site, form);
    else send(res, 413, page("Too large", "<p>That form was too large.</p>"));
    return true;
  };
}
