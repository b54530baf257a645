// `aegis login`, `aegis whoami`, `aegis logout`: the device flow as people
// know it from `gh auth login`. Everything is found from the broker's OAuth
// metadata. The tokens and a DPoP key (every token is bound to it) are kept
// in the user's config directory, readable by the user only; an expired
// access token is refreshed silently.
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { type Command, Option } from "commander";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import { defaultCliClientId } from "../protocol/well-known.js";
import { createDpopProof } from "../sdk/dpop-proof.js";
import { brokerTransport, fetchFrom, parseServerUrl } from "./broker-connection.js";
import { UsageError } from "./failures.js";

export function addLoginCommands(program: Command): void {
  program
    .command("login")
    .summary("sign in to a broker with the device flow")
    .description(
      "Sign in with the OAuth device flow: shows a code and a URL (and opens a browser when it can), waits until you approve, then keeps the tokens and a DPoP key they are bound to in $AEGIS_CONFIG_DIR or ~/.config/aegis (readable by you only).",
    )
    .requiredOption("--server <url>", "the broker, e.g. http://127.0.0.1:8080", parseServerUrl)
    .addOption(
      new Option("--client-id <id>", "OAuth client to sign in as").env("AEGIS_CLIENT_ID").default(defaultCliClientId),
    )
    .option("--scope <scopes>", "space-separated scopes to ask for")
    .option("--audience <audience>", "audience the tokens are for")
    .addHelpText(
      "after",
      `
Environment:
  BROWSER=none   print the URL only, never open a browser

Examples:
  $ aegis login --server http://127.0.0.1:8080
  $ aegis login --server https://aegis.example.com --scope "credential.read:provider:gcp"`,
    )
    .action(login);

  program
    .command("whoami")
    .summary("show who you are signed in as")
    .description("Show who you are signed in as, and your scopes (refreshes the token when needed).")
    .addHelpText("after", "\nExample:\n  $ aegis whoami")
    .action(whoami);

  program
    .command("logout")
    .summary("sign out: revoke the tokens and forget them")
    .description("Revoke the stored tokens at the broker and forget them.")
    .addHelpText("after", "\nExample:\n  $ aegis logout")
    .action(logout);
}

export interface Stored {
  server: string;
  clientId: string;
  tokenEndpoint: string;
  revocationEndpoint: string;
  dpopJwk: JWK;
  accessToken: string;
  refreshToken: string;
  expiresAt: number;
}

interface TokenResponse {
  access_token?: string;
  refresh_token?: string;
  expires_in?: number;
  error?: string;
  error_description?: string;
}

function configFile(): string {
  const base =
    process.env.AEGIS_CONFIG_DIR ?? path.join(process.env.XDG_CONFIG_HOME ?? path.join(homedir(), ".config"), "aegis");
  return path.join(base, "credentials.json");
}

function save(stored: Stored): void {
  const file = configFile();
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600); // an older file keeps its mode on overwrite
}

function load(): Stored {
  try {
    return JSON.parse(readFileSync(configFile(), "utf8")) as Stored;
  } catch {
    throw new UsageError("not signed in: run aegis login --server URL");
  }
}

/** POSTs a form to an OAuth endpoint with a DPoP proof, answering one `use_dpop_nonce` challenge. */
async function postForm(url: string, jwk: JWK, body: Record<string, string>): Promise<TokenResponse> {
  let nonce: string | undefined;
  for (let attempt = 0; ; attempt++) {
    const response = await fetchFrom(url, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        dpop: await createDpopProof(jwk, { method: "POST", url, ...(nonce ? { nonce } : {}) }),
      },
      body: new URLSearchParams(body),
    });
    const json = (await response.json().catch(() => ({ error: `HTTP ${response.status}` }))) as TokenResponse;
    nonce = response.headers.get("dpop-nonce") ?? undefined;
    if (json.error === "use_dpop_nonce" && nonce && attempt === 0) continue;
    return json;
  }
}

function openBrowser(url: string): void {
  const browser = process.env.BROWSER;
  if (browser === "none") return;
  const command =
    browser ??
    (process.platform === "darwin" ? "open" : process.env.DISPLAY || process.env.WAYLAND_DISPLAY ? "xdg-open" : "");
  if (!command) return;
  const child = spawn(command, [url], { stdio: "ignore", detached: true });
  child.on("error", () => {}); // no browser: the printed URL is enough
  child.unref();
}

interface LoginOptions {
  server: string;
  clientId: string;
  scope?: string;
  audience?: string;
}

/** The broker's OAuth metadata (RFC 8414): the endpoints login needs, or an error saying the server is no broker. */
async function oauthMetadata(server: string): Promise<Record<string, string>> {
  const response = await fetchFrom(`${server}/.well-known/oauth-authorization-server`);
  const metadata = (await response.json().catch(() => undefined)) as Record<string, string> | undefined;
  if (!response.ok || !metadata?.device_authorization_endpoint || !metadata.token_endpoint) {
    throw new Error(`${server} does not look like an Aegis broker (no device flow in its OAuth metadata)`);
  }
  return metadata;
}

async function login(options: LoginOptions): Promise<void> {
  const { server, clientId } = options;
  const metadata = await oauthMetadata(server);
  const dpop = await generateKeyPair("ES256", { extractable: true });
  const dpopJwk = await exportJWK(dpop.privateKey);
  const started = (await (
    await fetchFrom(metadata.device_authorization_endpoint ?? "", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        client_id: clientId,
        scope: options.scope ?? "",
        ...(options.audience ? { audience: options.audience } : {}),
      }),
    })
  ).json()) as Record<string, string | number>;
  if (started.error)
    throw new Error(`device authorization refused: ${started.error} ${started.error_description ?? ""}`);
  process.stdout.write(
    `To sign in, open ${started.verification_uri} and enter the code ${started.user_code}\n` +
      `(or open ${started.verification_uri_complete})\n`,
  );
  openBrowser(String(started.verification_uri_complete));
  let interval = Number(started.interval ?? 5);
  const deadline = Date.now() + Number(started.expires_in ?? 600) * 1000;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, interval * 1000));
    const answer = await postForm(metadata.token_endpoint ?? "", dpopJwk, {
      grant_type: "urn:ietf:params:oauth:grant-type:device_code",
      client_id: clientId,
      device_code: String(started.device_code),
    });
    if (answer.error === "authorization_pending") continue;
    if (answer.error === "slow_down") {
      interval += 5;
      continue;
    }
    if (answer.error === "access_denied") throw new Error("access denied: the request was denied in the browser");
    if (answer.error) {
      throw new Error(
        `login failed: ${answer.error}${answer.error === "expired_token" ? " (the code expired; run login again)" : ""}`,
      );
    }
    save({
      server,
      clientId,
      tokenEndpoint: metadata.token_endpoint ?? "",
      revocationEndpoint: metadata.revocation_endpoint ?? "",
      dpopJwk,
      accessToken: answer.access_token ?? "",
      refreshToken: answer.refresh_token ?? "",
      expiresAt: Date.now() + (answer.expires_in ?? 0) * 1000,
    });
    process.stdout.write(`Logged in to ${server}.\n`);
    return;
  }
  throw new Error("login failed: the code expired; run login again");
}

/** The stored session, its access token refreshed (and the rotated refresh token kept) when near expiry. */
export async function session(): Promise<Stored> {
  const stored = load();
  if (stored.expiresAt - Date.now() > 30_000) return stored;
  const answer = await postForm(stored.tokenEndpoint, stored.dpopJwk, {
    grant_type: "refresh_token",
    client_id: stored.clientId,
    refresh_token: stored.refreshToken,
  });
  if (answer.error) throw new UsageError(`session expired (${answer.error}): run aegis login again`);
  const refreshed = {
    ...stored,
    accessToken: answer.access_token ?? "",
    refreshToken: answer.refresh_token ?? stored.refreshToken,
    expiresAt: Date.now() + (answer.expires_in ?? 0) * 1000,
  };
  save(refreshed);
  return refreshed;
}

export function dpopTransport(stored: Stored) {
  const prove: Interceptor = (next) => async (req) => {
    req.header.set("authorization", `DPoP ${stored.accessToken}`);
    req.header.set(
      "dpop",
      await createDpopProof(stored.dpopJwk, {
        method: req.requestMethod,
        url: req.url,
        accessToken: stored.accessToken,
      }),
    );
    return next(req);
  };
  return brokerTransport(stored.server, prove);
}

async function whoami(): Promise<void> {
  const stored = await session();
  const { principal, scopes } = await createClient(PrincipalService, dpopTransport(stored)).whoAmI({});
  process.stdout.write(
    `${principal?.displayName} (${principal?.id}) in tenant ${principal?.tenantId} at ${stored.server}\n` +
      `scopes: ${scopes.join(" ") || "(none)"}\n`,
  );
}

async function logout(): Promise<void> {
  const stored = load();
  // Revoking the refresh token ends its family (and the access tokens issued with it).
  await fetchFrom(stored.revocationEndpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      token: stored.refreshToken,
      token_type_hint: "refresh_token",
      client_id: stored.clientId,
    }),
  }).catch(() => undefined);
  await createClient(TokenService, dpopTransport(stored))
    .revokeToken({ token: stored.accessToken })
    .catch(() => undefined);
  rmSync(configFile(), { force: true });
  process.stdout.write(`Logged out of ${stored.server}.\n`);
}
