// The verification page of the device flow (`verification_uri`): a person
// signs in, enters or confirms the user code, sees which client asks, from
// where and for what, and approves all or some of the scopes, or denies.
// Plain HTML forms: no JavaScript, nothing loaded from elsewhere.
//
// Safety: the session cookie holds a random secret (its hash is stored),
// `HttpOnly`, `SameSite=Lax`, `Secure` on TLS, scoped to /device. Every form
// carries a CSRF token: the session's for decisions, a double-submit cookie
// for signing in. A pre-filled code still needs the explicit click.
// Wrong codes and wrong passwords are rate-limited per address and audited;
// wrong passwords also slow further attempts at that account from that
// address (auth/sign-in-backoff.ts), which never locks its owner out.
// A signed-in page has a sign-out control (a post with the session's CSRF
// token) that ends the session.
//
// The enrollment page (`/enroll`) is here too: a person added by an admin
// enters their one-time code and chooses their password (people/ owns the
// codes), with a double-submit CSRF cookie of its own path.
// The markup is in verification-views.ts, which escapes every value it shows.
import { create } from "@bufbuild/protobuf";
import {
  ApproveDeviceAuthorizationRequestSchema,
  DenyDeviceAuthorizationRequestSchema,
  DeviceAuthService,
} from "../../gen/proto/aegis/device/v1/device_pb.js";
import type { AuditEntry } from "../core/audit.js";
import type { CallOrigin } from "../core/call.js";
import type { Caller } from "../core/caller.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError, invalidArgument, permissionDenied } from "../core/errors/domain-error.js";
import { type NodeServerRequest, type NodeServerResponse, readForm } from "../core/http.js";
import type { HttpRoute, SharedPolicyRoute } from "../core/module.js";
import { sameSecret } from "../crypto/constant-time.js";
import { enrollWithCode } from "../people/index.js";
import { base62Alphabet, randomText } from "../protocol/random-text.js";
import { decideDeviceAuthorization, findPendingByUserCode } from "./approve.js";
import { type DeviceDeps, displayUserCode } from "./device-grant.js";
import { approvalPage, codePage, enrolledPage, enrollPage, loginPage, messagePage } from "./verification-views.js";
import { cookieOf, sendPage, sessionSeconds, type WebSignIn } from "./web-sign-in.js";

export interface PageDeps {
  readonly ctx: BrokerContext;
  readonly device: DeviceDeps;
  readonly signIn: WebSignIn;
}

type Site = CallOrigin;

/** A decision posted on the approval page. */
interface Decision {
  readonly userCode: string;
  readonly approve: boolean;
  readonly scopes: readonly string[];
  /** The scopes are the boxes left ticked: none ticked gives none, not everything asked. */
  readonly asTicked: true;
  /** Whether the form carries the session's CSRF token. */
  readonly csrfMatches: () => boolean;
}

const sessionCookie = "aegis_session";
const loginCookie = "aegis_login";
const enrollCookie = "aegis_enroll";
const maxFormBytes = 16 * 1024;

/** The page's routes: the code form, sign-in and the decision. */
export function verificationPage(deps: PageDeps): HttpRoute[] {
  const { ctx, device, signIn } = deps;
  const cookie = (name: string, value: string, maxAge: number, path = "/device") =>
    signIn.cookie(name, value, maxAge, path);
  const send = (
    res: NodeServerResponse,
    status: number,
    page: Promise<string>,
    headers: Record<string, string | string[]> = {},
  ) => sendPage(res, status, page, { signIn: "/device/login", headers });
  const redirect = (res: NodeServerResponse, location: string, headers: Record<string, string | string[]> = {}) => {
    res.writeHead(303, { location, "cache-control": "no-store", ...headers });
    res.end();
  };
  const audit = (site: Site, entry: Omit<AuditEntry, "requestId" | "client">) =>
    ctx.audit.append({ requestId: site.requestId, client: site.client, ...entry });

  /** The signed-in person, with their current grants; undefined without a live session. */
  const signedIn = (req: NodeServerRequest) => signIn.signedIn(req, sessionCookie);

  function loginForm(res: NodeServerResponse, userCode: string, error = "", status = 200) {
    const token = randomText(base62Alphabet, 32);
    return send(res, status, loginPage({ loginCsrf: token, userCode, error }), {
      "set-cookie": cookie(loginCookie, token, 600),
    });
  }

  function codeForm(res: NodeServerResponse, csrf: string, error = "", status = 200) {
    return send(res, status, codePage({ error, csrf }));
  }

  async function show(req: NodeServerRequest, res: NodeServerResponse, site: Site, userCode: string) {
    const session = await signedIn(req);
    if (!session) return loginForm(res, userCode);
    if (!userCode) return codeForm(res, session.csrf);
    let row: Awaited<ReturnType<typeof findPendingByUserCode>>;
    try {
      row = await findPendingByUserCode(
        device,
        { address: site.clientAddress, principalId: session.caller.principalId },
        session.caller.tenantId,
        userCode,
      );
    } catch (error) {
      return refuseCode(res, site, session, error);
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

  async function refuseCode(
    res: NodeServerResponse,
    site: Site,
    { caller, csrf }: { caller: Caller; csrf: string },
    error: unknown,
  ) {
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
    return codeForm(res, csrf, "That code is not valid, or it has expired. Check your device and try again.", 404);
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
    const username = (form.get("username") ?? "").toLowerCase().slice(0, 254);
    const tenantName = (form.get("tenant") ?? "").trim().toLowerCase().slice(0, 63);
    const tooMany = async (error: DomainError) => {
      await audit(site, {
        tenantId: null,
        actorId: null,
        action: "device.login",
        target: username,
        outcome: "denied",
        reason: error.auditReason,
      });
      return send(res, 429, messagePage("Too many attempts", error.message, { error: true }), {
        ...error.options.headers,
      });
    };
    try {
      await device.authFailures.refuseIfOver(site.clientAddress);
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      return tooMany(error);
    }
    const checked = await signIn.checkPassword(site, tenantName, username, form.get("password") ?? "");
    if (checked instanceof DomainError) return tooMany(checked);
    const { person, reason } = checked;
    if (person?.status !== "active") {
      await audit(site, {
        tenantId: person?.tenantId ?? null,
        actorId: person?.principalId ?? null,
        action: "device.login",
        target: username,
        outcome: "denied",
        reason: person ? "PRINCIPAL_NOT_ACTIVE" : reason,
      });
      await device.authFailures.record(site.clientAddress);
      const message =
        reason === "AMBIGUOUS_ACCOUNT"
          ? "This name is in more than one tenant: enter your tenant too."
          : "Wrong username or password.";
      return loginForm(res, userCode, message, 401);
    }
    const secret = await signIn.startSession(person);
    await audit(site, {
      tenantId: person.tenantId,
      actorId: person.principalId,
      action: "device.login",
      target: username,
      outcome: "success",
      reason: "",
    });
    redirect(res, `/device${userCode ? `?user_code=${encodeURIComponent(userCode)}` : ""}`, {
      "set-cookie": [cookie(sessionCookie, secret, sessionSeconds), cookie(loginCookie, "", 0)],
    });
  }

  /** Ends the browser's session: the row goes, the cookie is cleared. */
  async function logout(req: NodeServerRequest, res: NodeServerResponse, site: Site, form: URLSearchParams) {
    const session = await signedIn(req);
    if (session && !sameSecret(form.get("csrf") ?? "", session.csrf)) {
      await audit(site, {
        tenantId: session.caller.tenantId,
        actorId: session.caller.principalId,
        action: "device.logout",
        target: "",
        outcome: "denied",
        reason: "CSRF_MISMATCH",
      });
      return send(
        res,
        403,
        messagePage("Not allowed", "This form is not valid any more. Go back and try again.", { error: true }),
      );
    }
    if (session) {
      await signIn.endSession(req, sessionCookie);
      await audit(site, {
        tenantId: session.caller.tenantId,
        actorId: session.caller.principalId,
        action: "device.logout",
        target: session.caller.principalId,
        outcome: "success",
        reason: "",
      });
    }
    await send(res, 200, messagePage("Signed out", "You are signed out.", { error: false }), {
      "set-cookie": cookie(sessionCookie, "", 0),
    });
  }

  function enrollForm(res: NodeServerResponse, code: string, error = "", status = 200) {
    const token = randomText(base62Alphabet, 32);
    return send(res, status, enrollPage({ enrollCsrf: token, code, error }), {
      "set-cookie": cookie(enrollCookie, token, 1800, "/enroll"),
    });
  }

  async function enroll(req: NodeServerRequest, res: NodeServerResponse, site: Site, form: URLSearchParams) {
    const code = (form.get("code") ?? "").slice(0, 100);
    if (!sameSecret(form.get("enroll_csrf") ?? "", cookieOf(req, enrollCookie))) {
      await audit(site, {
        tenantId: null,
        actorId: null,
        action: "person.enroll",
        target: "",
        outcome: "denied",
        reason: "CSRF_MISMATCH",
      });
      return enrollForm(res, code, "Your form expired. Please try again.", 403);
    }
    const password = form.get("password") ?? "";
    if (password.length < 12 || password.length > 1024) {
      return enrollForm(res, code, "Choose a password of 12 to 1024 characters.", 400);
    }
    if (password !== (form.get("confirm") ?? "")) return enrollForm(res, code, "The two passwords differ.", 400);
    try {
      await device.authFailures.refuseIfOver(site.clientAddress);
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      return send(res, 429, messagePage("Too many attempts", error.message, { error: true }), {
        ...error.options.headers,
      });
    }
    let enrolled: Awaited<ReturnType<typeof enrollWithCode>>;
    try {
      enrolled = await enrollWithCode(ctx, site, { code, password });
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      await device.authFailures.record(site.clientAddress);
      return enrollForm(res, "", "That code is not valid: it may have been used, replaced or have expired.", 403);
    }
    const tenant = await ctx.prisma.tenant.findUnique({ where: { id: enrolled.tenantId } });
    await send(res, 200, enrolledPage({ signInName: enrolled.signInName, tenantName: tenant?.name ?? "" }), {
      "set-cookie": cookie(enrollCookie, "", 0, "/enroll"),
    });
  }

  /**
   * The decision form: the page's face of ApproveDeviceAuthorization and
   * DenyDeviceAuthorization, under their policy through the pipeline. The
   * credential is the session cookie; the form must carry the session's CSRF
   * token; every refusal is audited once, with the RPC's action.
   */
  const decide: SharedPolicyRoute<Decision> = {
    method: "POST",
    path: "/device/decide",
    shares: DeviceAuthService.method.approveDeviceAuthorization,
    async read(req) {
      const form = await readForm(req, maxFormBytes);
      if (!form) throw invalidArgument([{ field: "body", description: "larger than 16 KiB" }]);
      let session: Awaited<ReturnType<typeof signedIn>>;
      const decision = {
        userCode: form.get("user_code") ?? "",
        approve: form.get("decision") === "approve",
        scopes: form.getAll("scope"),
        asTicked: true as const,
        // Checked once the session is known, so its refusal names the person.
        csrfMatches: () => session !== undefined && sameSecret(form.get("csrf") ?? "", session.csrf),
      };
      return {
        ...(decision.approve
          ? {
              message: create(ApproveDeviceAuthorizationRequestSchema, {
                userCode: decision.userCode,
                scopes: decision.scopes,
              }),
            }
          : {
              rpc: DeviceAuthService.method.denyDeviceAuthorization,
              message: create(DenyDeviceAuthorizationRequestSchema, { userCode: decision.userCode }),
            }),
        authenticate: async () => {
          session = await signedIn(req);
          if (!session) throw new DomainError("unauthenticated", "NO_SESSION", "sign in first");
          return session.caller;
        },
        decoded: decision,
      };
    },
    async serve(res, call, decision) {
      if (!decision.csrfMatches()) {
        throw permissionDenied("CSRF_MISMATCH", "This form is not valid any more. Go back and try again.");
      }
      const caller = call.caller as Caller;
      const base = {
        requestId: call.requestId,
        tenantId: caller.tenantId,
        actorId: caller.principalId,
        client: call.client,
      };
      await decideDeviceAuthorization(device, caller, base, call.clientAddress, decision);
      await send(
        res,
        200,
        decision.approve
          ? messagePage("Device approved", "You can close this window and return to your device.", { error: false })
          : messagePage("Request denied", "The device will not get access. You can close this window.", {
              error: false,
            }),
      );
    },
    async refuse(req, res, error) {
      if (!(error instanceof DomainError)) {
        return send(res, 500, messagePage("Something went wrong", "Please try again.", { error: true }));
      }
      if (error.code === "resource_exhausted") {
        return send(res, 429, messagePage("Too many attempts", error.message, { error: true }), {
          ...error.options.headers,
        });
      }
      if (error.code === "not_found") {
        const session = await signedIn(req);
        const again = "That code is not valid, or it has expired. Check your device and try again.";
        if (session) return codeForm(res, session.csrf, again, 404);
      }
      if (error.reason === "INVALID_ARGUMENT" && error.fieldViolations[0]?.field === "body") {
        return send(res, 413, messagePage("Too large", "That form was too large.", { error: false }));
      }
      if (error.code === "unauthenticated") {
        return send(res, 401, messagePage("Not allowed", "Sign in first.", { error: true }));
      }
      await send(
        res,
        error.code === "invalid_argument" ? 400 : 403,
        messagePage("Not allowed", error.message, { error: true }),
      );
    },
  };

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
    { method: "POST", path: "/device/logout", handle: post(logout) },
    {
      method: "GET",
      path: "/enroll",
      handle: (req, res) =>
        enrollForm(res, (new URL(req.url ?? "/", "http://page").searchParams.get("code") ?? "").slice(0, 100)),
    },
    { method: "POST", path: "/enroll", handle: post(enroll) },
    decide,
  ] satisfies HttpRoute[];
}
