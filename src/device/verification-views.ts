// The markup of the broker's own pages (the device flow's verification page,
// the authorization endpoint's sign-in and consent), and the only file that
// builds it.
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
<label for="username">Username or email</label><input type="text" id="username" name="username" autocomplete="username" required>
<label for="tenant">Tenant <small>(only needed when your name is in several)</small></label><input type="text" id="tenant" name="tenant" autocomplete="organization">
<label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>`,
  );
}

/** The sign-out control of a signed-in page: a post with the session's CSRF token. */
const signOut = (csrf: string) =>
  html`<form method="post" action="/device/logout"><input type="hidden" name="csrf" value="${csrf}">
<button type="submit">Sign out</button></form>`;

export function codePage(input: { error: string; csrf: string }): Promise<string> {
  return document(
    "Enter the code shown on your device",
    html`${alert(input.error)}
<form method="get" action="/device"><label for="user_code">Code</label>
<input type="text" id="user_code" name="user_code" autocomplete="off" autocapitalize="characters" placeholder="XXXX-XXXX" required>
<button type="submit">Continue</button></form>
${signOut(input.csrf)}`,
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
<button type="submit" name="decision" value="deny">Deny</button></form>
${signOut(request.csrf)}`,
  );
}

/** Where a new person enters their enrollment code and chooses a password. */
export function enrollPage(input: { enrollCsrf: string; code: string; error: string }): Promise<string> {
  return document(
    "Set your password",
    html`${alert(input.error)}
<form method="post" action="/enroll">
<input type="hidden" name="enroll_csrf" value="${input.enrollCsrf}">
<label for="code">Enrollment code</label><input type="text" id="code" name="code" value="${input.code}" autocomplete="off" required>
<label for="password">New password <small>(at least 12 characters)</small></label><input type="password" id="password" name="password" autocomplete="new-password" minlength="12" required>
<label for="confirm">Repeat it</label><input type="password" id="confirm" name="confirm" autocomplete="new-password" minlength="12" required>
<button type="submit">Set password</button></form>`,
  );
}

/** After enrolling: the name to sign in with, and where. */
export function enrolledPage(input: { signInName: string; tenantName: string }): Promise<string> {
  return document(
    "Password set",
    html`<p>You can now sign in as <code>${input.signInName}</code> (tenant <code>${input.tenantName}</code>).</p>
<p><a href="/device">Sign in</a></p>`,
  );
}

/** A page that only says something: an outcome, or why a request was refused (`error`). */
export function messagePage(title: string, message: string, options: { error: boolean }): Promise<string> {
  return document(title, options.error ? alert(message) : html`<p>${message}</p>`);
}

/** The authorization endpoint's sign-in: the request travels in a hidden field and comes back after. */
export function authorizeSignInPage(input: {
  loginCsrf: string;
  request: string;
  clientName: string;
  error: string;
}): Promise<string> {
  return document(
    `Sign in to continue to ${input.clientName}`,
    html`${alert(input.error)}
<form method="post" action="/oauth/authorize/login">
<input type="hidden" name="login_csrf" value="${input.loginCsrf}"><input type="hidden" name="request" value="${input.request}">
<label for="username">Username or email</label><input type="text" id="username" name="username" autocomplete="username" required>
<label for="tenant">Tenant <small>(only needed when your name is in several)</small></label><input type="text" id="tenant" name="tenant" autocomplete="organization">
<label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>`,
  );
}

/** What the person is asked to allow; everything but `csrf` and `request` describes the asking client. */
export interface ConsentRequest {
  readonly clientName: string;
  /** Where the browser goes next: the redirect URI's origin. */
  readonly returnTo: string;
  readonly audience: string;
  /** Requested scopes; the ones the person holds can be given, the others are listed as not held. */
  readonly scopes: readonly { readonly scope: string; readonly held: boolean }[];
  readonly csrf: string;
  readonly request: string;
}

export function consentPage(input: ConsentRequest): Promise<string> {
  const scopes = input.scopes.length
    ? input.scopes.map(({ scope, held }, i) =>
        held
          ? html`<label><input type="checkbox" name="scope" value="${scope}" id="scope${i}" checked> <code>${scope}</code></label>
`
          : html`<p><code>${scope}</code> <small>(you do not hold it: it will not be given)</small></p>
`,
      )
    : html`<p>No scopes: the application will only know who you are.</p>`;
  return document(
    `Allow ${input.clientName}?`,
    html`<p><strong>${input.clientName}</strong> asks to act as you.</p>
<dl><dt>Returns to</dt><dd>${input.returnTo}</dd><dt>For</dt><dd>${input.audience}</dd></dl>
<form method="post" action="/oauth/authorize/decide">
<input type="hidden" name="csrf" value="${input.csrf}"><input type="hidden" name="request" value="${input.request}">
<fieldset><legend>Scopes</legend>${scopes}</fieldset>
<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button></form>`,
  );
}
