// Signing in from the portal with the broker's own authorization server:
// authorization code + PKCE (RFC 6749 §4.1, RFC 7636 S256) as the public
// client `aegis-developer-portal`, redirect URI exactly
// `<public URL>/developer/callback`. The flow runs in a pop-up so this page
// keeps its memory (the verifier, the DPoP key, the token): the callback
// page hands its query to this page (postMessage, same origin only), which
// checks `state` and `iss` (RFC 9207) before exchanging the code at the
// token endpoint with a DPoP proof, so the token is bound to this page's
// key. Nothing is written to storage.
import { sha256 } from "./dpop.js";
import { session } from "./session.js";

export const portalClientId = "aegis-developer-portal";
const messageType = "aegis-developer-callback";

const random64 = (bytes: number) =>
  btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(bytes))))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");

function say(text: string): void {
  const status = document.getElementById("session-status");
  if (status) status.textContent = text;
}

interface Pending {
  readonly state: string;
  readonly verifier: string;
  readonly redirectUri: string;
  readonly popup: Window;
  readonly scope: string;
}

let pending: Pending | undefined;

async function exchange(params: URLSearchParams, flow: Pending): Promise<void> {
  const metadata = await session.metadata();
  // RFC 9207 §2.4: the issuer in the response must be the one we asked.
  const iss = params.get("iss");
  if (iss !== null ? iss !== metadata.issuer : metadata.authorization_response_iss_parameter_supported) {
    return say("Sign-in refused: the response came from another issuer.");
  }
  if (params.get("state") !== flow.state) return say("Sign-in refused: the state does not match.");
  const error = params.get("error");
  if (error === "invalid_scope") {
    const description = params.get("error_description");
    return say(
      `Sign-in refused (invalid_scope): the broker will not give you the scopes asked for (${flow.scope || "none"})${description ? `: ${description}` : ""}. Check the Scopes field: a scope names the request's exact target, and you must hold a grant covering it.`,
    );
  }
  if (error) return say(`Sign-in failed: ${error}`);
  const code = params.get("code");
  if (!code) return say("Sign-in failed: no code in the response.");
  const dpop = await session.dpop();
  const body = new URLSearchParams({
    grant_type: "authorization_code",
    code,
    redirect_uri: flow.redirectUri,
    client_id: portalClientId,
    code_verifier: flow.verifier,
  });
  const post = async (nonce?: string) =>
    fetch(metadata.token_endpoint, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        dpop: await dpop.proof("POST", metadata.token_endpoint, undefined, nonce),
      },
      body,
    });
  let response = await post();
  const nonce = response.headers.get("dpop-nonce");
  if (response.status === 400 && nonce) response = await post(nonce);
  const json = (await response.json()) as {
    access_token?: string;
    token_type?: string;
    expires_in?: number;
    error?: string;
  };
  if (!response.ok || !json.access_token) return say(`Sign-in failed: ${json.error ?? `HTTP ${response.status}`}`);
  session.setToken({
    value: json.access_token,
    type: json.token_type?.toLowerCase() === "dpop" ? "DPoP" : "Bearer",
    expiresAt: Date.now() + (json.expires_in ?? 0) * 1000,
  });
  say("Signed in");
}

async function signIn(): Promise<void> {
  const metadata = await session.metadata();
  if (!metadata.authorization_endpoint) return say("This broker offers no sign-in (no authorization endpoint).");
  const state = random64(32);
  const verifier = random64(32);
  const redirectUri = `${metadata.issuer.replace(/\/$/, "")}/developer/callback`;
  // On an operation's page, ask for exactly the scopes of the Scopes field
  // (the scope the request needs, with its target's selector, unless the
  // person changed it; none for an operation any signed-in caller may call).
  // A wildcard is never asked for: a request names its target.
  const asked = ((document.getElementById("mint-scopes") as HTMLInputElement | null)?.value ?? "")
    .split(/\s+/)
    .filter(Boolean);
  if (asked.some((s) => s.includes("*"))) {
    return say("Sign-in not started: a scope with * is never asked for; name the exact target in the Scopes field.");
  }
  const scope = asked.join(" ");
  const url = new URL(metadata.authorization_endpoint);
  url.search = new URLSearchParams({
    ...(scope ? { scope } : {}),
    response_type: "code",
    client_id: portalClientId,
    redirect_uri: redirectUri,
    state,
    code_challenge: await sha256(verifier),
    code_challenge_method: "S256",
  }).toString();
  const popup = window.open(url, "aegis-sign-in", "popup,width=520,height=680");
  if (!popup) return say("Allow the sign-in pop-up to sign in.");
  pending = { state, verifier, redirectUri, popup, scope };
  say("Signing in…");
}

export function setUpSignIn(): void {
  document.getElementById("sign-in")?.addEventListener("click", () => void signIn());
  window.addEventListener("message", (event) => {
    const flow = pending;
    if (!flow || event.origin !== location.origin || event.source !== flow.popup) return;
    const data = event.data as { type?: string; search?: string };
    if (data?.type !== messageType || typeof data.search !== "string") return;
    pending = undefined;
    void exchange(new URLSearchParams(data.search), flow);
  });
  session.listeners.add(() => {
    const button = document.getElementById("sign-in");
    if (button && session.token) button.textContent = "Signed in";
  });
}

/** On /developer/callback: hand the response to the portal page that opened the pop-up, then close. */
export function relayCallback(): void {
  const status = document.getElementById("callback-status");
  if (!status) return;
  const search = location.search;
  history.replaceState(null, "", location.pathname);
  if (window.opener && window.opener !== window) {
    (window.opener as Window).postMessage({ type: messageType, search }, location.origin);
    status.textContent = "Signed in; you can close this window.";
    window.close();
  } else {
    status.textContent = "Start signing in from a portal page: this page only finishes a sign-in it started.";
  }
}
