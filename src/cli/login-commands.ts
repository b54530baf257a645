// `aegis login`, `aegis whoami`, `aegis logout`, `aegis profiles`: the device
// flow as people know it from `gh auth login`. Everything is found from the
// broker's OAuth metadata. The tokens and a DPoP key (every token is bound
// to it) are kept in the user's config directory, readable by the user only,
// one profile per server (the last one logged in to is the default; --server
// picks another); an expired access token is refreshed silently.
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
import { printTable } from "./output.js";

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

  const serverOption = () =>
    new Option("--server <url>", "the broker's profile (default: the last one logged in to)")
      .env("AEGIS_SERVER")
      .argParser(parseServerUrl);

  program
    .command("whoami")
    .summary("show who you are signed in as")
    .description("Show who you are signed in as, and your scopes (refreshes the token when needed).")
    .addOption(serverOption())
    .addHelpText("after", "\nExamples:\n  $ aegis whoami\n  $ aegis whoami --server https://aegis.example.com")
    .action(whoami);

  program
    .command("logout")
    .summary("sign out: revoke the tokens and forget them")
    .description("Revoke the stored tokens at the broker and forget that server's profile.")
    .addOption(serverOption())
    .addHelpText("after", "\nExamples:\n  $ aegis logout\n  $ aegis logout --server https://aegis.example.com")
    .action(logout);

  const profiles = program
    .command("profiles")
    .summary("the servers you are logged in to, and which is the default")
    .description(
      "One profile per server you logged in to: its tokens and DPoP key. Commands without --server use the default profile.",
    )
    .addHelpText("after", "\nExamples:\n  $ aegis profiles list\n  $ aegis profiles use https://aegis.example.com");
  profiles
    .command("list")
    .summary("list the profiles")
    .description(
      "List the servers you are logged in to, the client and when the access token expires; * marks the default.",
    )
    .addHelpText("after", "\nExample:\n  $ aegis profiles list")
    .action(listProfiles);
  profiles
    .command("use")
    .summary("make a profile the default")
    .description("Make the profile of <server> the one commands use without --server.")
    .argument("<server>", "a server you logged in to", parseServerUrl)
    .addHelpText("after", "\nExample:\n  $ aegis profiles use https://aegis.example.com")
    .action(useProfile);
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

/** What the config file holds: a profile per server, and the default one. */
interface Profiles {
  default: string;
  profiles: Record<string, Stored>;
}

function configFile(): string {
  const base =
    process.env.AEGIS_CONFIG_DIR ?? path.join(process.env.XDG_CONFIG_HOME ?? path.join(homedir(), ".config"), "aegis");
  return path.join(base, "credentials.json");
}

function readProfiles(): Profiles {
  let parsed: Partial<Profiles> & Partial<Stored>;
  try {
    parsed = JSON.parse(readFileSync(configFile(), "utf8")) as Partial<Profiles> & Partial<Stored>;
  } catch {
    return { default: "", profiles: {} };
  }
  // A file written before profiles held one session.
  if (typeof parsed.server === "string")
    return { default: parsed.server, profiles: { [parsed.server]: parsed as Stored } };
  return { default: parsed.default ?? "", profiles: parsed.profiles ?? {} };
}

function writeProfiles(all: Profiles): void {
  const file = configFile();
  if (Object.keys(all.profiles).length === 0) {
    rmSync(file, { force: true });
    return;
  }
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${JSON.stringify(all, null, 2)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600); // an older file keeps its mode on overwrite
}

/** Keeps `stored` as its server's profile; `makeDefault` when it was just logged in to. */
function save(stored: Stored, makeDefault = false): void {
  const all = readProfiles();
  all.profiles[stored.server] = stored;
  if (makeDefault || !all.default) all.default = stored.server;
  writeProfiles(all);
}

/** The profile of `server`, or the default one. */
function load(server?: string): Stored {
  const all = readProfiles();
  const stored = all.profiles[server ?? all.default];
  if (stored) return stored;
  throw new UsageError(
    server && Object.keys(all.profiles).length > 0
      ? `not signed in to ${server}: run aegis login --server ${server} (or aegis profiles list)`
      : "not signed in: run aegis login --server URL",
  );
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
    save(
      {
        server,
        clientId,
        tokenEndpoint: metadata.token_endpoint ?? "",
        revocationEndpoint: metadata.revocation_endpoint ?? "",
        dpopJwk,
        accessToken: answer.access_token ?? "",
        refreshToken: answer.refresh_token ?? "",
        expiresAt: Date.now() + (answer.expires_in ?? 0) * 1000,
      },
      true,
    );
    process.stdout.write(`Logged in to ${server}.\n`);
    return;
  }
  throw new Error("login failed: the code expired; run login again");
}

/**
 * The session of `server`'s profile (the default one without), its access
 * token refreshed (and the rotated refresh token kept) when near expiry.
 */
export async function session(server?: string): Promise<Stored> {
  const stored = load(server);
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

async function whoami(options: { server?: string }): Promise<void> {
  const stored = await session(options.server);
  const { principal, scopes } = await createClient(PrincipalService, dpopTransport(stored)).whoAmI({});
  process.stdout.write(
    `${principal?.displayName} (${principal?.id}) in tenant ${principal?.tenantId} at ${stored.server}\n` +
      `scopes: ${scopes.join(" ") || "(none)"}\n`,
  );
}

async function logout(options: { server?: string }): Promise<void> {
  const stored = load(options.server);
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
  const all = readProfiles();
  delete all.profiles[stored.server];
  if (all.default === stored.server) all.default = Object.keys(all.profiles)[0] ?? "";
  writeProfiles(all);
  process.stdout.write(`Logged out of ${stored.server}.\n`);
}

function listProfiles(): void {
  const all = readProfiles();
  const rows = Object.values(all.profiles).map((p) => [
    p.server === all.default ? "*" : "",
    p.server,
    p.clientId,
    new Date(p.expiresAt).toISOString().replace(/\.\d{3}Z$/, "Z"),
  ]);
  printTable(["", "server", "client", "token expires"], rows);
}

function useProfile(server: string): void {
  const all = readProfiles();
  if (!all.profiles[server]) throw new UsageError(`no profile for ${server}: run aegis login --server ${server}`);
  all.default = server;
  writeProfiles(all);
  process.stdout.write(`${server} is the default now.\n`);
}
