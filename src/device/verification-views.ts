// The markup of the verification page, and the only file that builds it.
// Each page is a `hono/html` tagged template: every interpolated value is
// HTML-escaped (`& < > " '`) unless it is itself a fragment built by `html`
// here, so a client's name, a user agent, an audience or a scope is always
// text, in element content and in quoted attributes alike. Nothing here uses
// `raw()`, and no markup is assembled by string concatenation.
import { html } from "hono/html";

type Fragment = ReturnType<typeof html>;

/** The whole document around one page's body. */
async function document(title: string, body: Fragment | string): Promise<string> {
  const page = await html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} – Aegis</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;color:#111}
label{display:block;margin:.75rem 0 .25rem}input[type=text],input[type=password]{width:100%;padding:.5rem;font:inherit}
button{font:inherit;padding:.5rem 1rem;margin:1rem .5rem 0 0}.error{color:#a00}code{font-size:1.1em}
dt{font-weight:600}dd{margin:0 0 .5rem}fieldset{border:1px solid #999}</style></head>
<body><main><h1>${title}</h1>${body}</main></body></html>`;
  return page.toString();
}

/** An error line for the top of a form; nothing when there is none. */
const alert = (error: string) => (error ? html`<p class="error" role="alert">${error}</p>` : "");

export function loginPage(input: { loginCsrf: string; userCode: string; error: string }): Promise<string> {
  return document(
    "Sign in to approve a device",
    html`${alert(input.error)}
<form method="post" action="/device/login">
<input type="hidden" name="login_csrf" value="${input.loginCsrf}"><input type="hidden" name="user_code" value="${input.userCode}">
<label for="username">Username</label><input type="text" id="username" name="username" autocomplete="username" required>
<label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>`,
  );
}

export function codePage(input: { error: string }): Promise<string> {
  return document(
    "Enter the code shown on your device",
    html`${alert(input.error)}
<form method="get" action="/device"><label for="user_code">Code</label>
<input type="text" id="user_code" name="user_code" autocomplete="off" autocapitalize="characters" placeholder="XXXX-XXXX" required>
<button type="submit">Continue</button></form>`,
  );
}

/** What the person is asked to approve; every field but `csrf` comes from the requesting device or its client. */
export interface ApprovalRequest {
  readonly clientName: string;
  /** As displayed, `XXXX-XXXX`. */
  readonly userCode: string;
  readonly requesterAddress: string;
  readonly requesterAgent: string;
  readonly audience: string;
  readonly scopes: readonly string[];
  /** The session's CSRF token, posted back with the decision. */
  readonly csrf: string;
}

export function approvalPage(request: ApprovalRequest): Promise<string> {
  const scopes = request.scopes.length
    ? request.scopes.map(
        (scope, i) =>
          html`<label><input type="checkbox" name="scope" value="${scope}" id="scope${i}" checked> <code>${scope}</code></label>
`,
      )
    : html`<p>No scopes: the device will only know who you are.</p>`;
  return document(
    "Approve this device?",
    html`<p><strong>${request.clientName}</strong> asks to act as you.</p>
<dl><dt>Code</dt><dd><code>${request.userCode}</code> – check it matches your device</dd>
<dt>Requested from</dt><dd>${request.requesterAddress}${request.requesterAgent ? html` (${request.requesterAgent})` : ""}</dd>
<dt>For</dt><dd>${request.audience}</dd></dl>
<form method="post" action="/device/decide">
<input type="hidden" name="csrf" value="${request.csrf}"><input type="hidden" name="user_code" value="${request.userCode}">
<fieldset><legend>Scopes</legend>${scopes}</fieldset>
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button></form>`,
  );
}

/** A page that only says something: an outcome, or why a request was refused (`error`). */
export function messagePage(title: string, message: string, options: { error: boolean }): Promise<string> {
  return document(title, options.error ? alert(message) : html`<p>${message}</p>`);
}
