// The standard OAuth endpoints, so off-the-shelf OAuth libraries work with
// nothing but the metadata URL. They are thin: form decoding and client
// authentication in the shapes the RFCs define, then the same request rules
// (declared in proto for the RPC each endpoint stands for) and the same
// domain functions as the RPCs.

import type { DescMethod } from "@bufbuild/protobuf";
import type { Validator } from "@bufbuild/protovalidate";
import type { Logger } from "pino";
import { BeginDeviceAuthorizationRequestSchema, DeviceAuthService } from "../../gen/proto/aegis/device/v1/device_pb.js";
import { MintTokenRequestSchema, TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import type { Authenticator } from "../auth/authenticate.js";
import { readCredentials } from "../auth/authenticate.js";
import { authenticateClient, type ClientAuthenticationDeps } from "../auth/client-authentication.js";
import type { AuditTrail } from "../core/audit.js";
import type { Caller } from "../core/caller.js";
import { DomainError, invalidArgument, missingGrant, unauthenticated } from "../core/errors/domain-error.js";
import { toOAuthError } from "../core/errors/oauth-error.js";
import { presentedScheme } from "../core/errors/www-authenticate.js";
import { type NodeServerResponse, readForm } from "../core/http.js";
import type { HttpRoute } from "../core/module.js";
import { assertValid } from "../core/request-rules.js";
import {
  beginDeviceAuthorization,
  type DeviceDeps,
  exchangeDeviceCode,
  refreshAccessToken,
  revokeRefreshToken,
  type TokenSet,
} from "../device/index.js";
import { dpopAlgorithms } from "../protocol/dpop.js";
import {
  type CallSite,
  introspectToken,
  mintToken,
  revokeToken,
  revokeTokenAsPublicClient,
  type TokenDeps,
} from "../tokens/index.js";

const maxFormBytes = 64 * 1024;
const jwtBearerAssertion = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const deviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code";

export interface OAuthDeps {
  readonly tokens: TokenDeps;
  readonly device: DeviceDeps;
  readonly authenticator: Authenticator;
  readonly audit: AuditTrail;
  readonly publicUrl: string;
  readonly log: Logger;
  /** Client authentication, shared with MintToken's in the RPC pipeline. */
  readonly clients: ClientAuthenticationDeps;
  /** The RPCs' request rules, applied to the requests these endpoints stand for. */
  readonly validator: Validator;
}

export function authorizationServerMetadata(issuer: string) {
  return {
    issuer,
    token_endpoint: `${issuer}/oauth/token`,
    device_authorization_endpoint: `${issuer}/oauth/device_authorization`,
    jwks_uri: `${issuer}/.well-known/jwks.json`,
    introspection_endpoint: `${issuer}/oauth/introspect`,
    revocation_endpoint: `${issuer}/oauth/revoke`,
    grant_types_supported: ["client_credentials", deviceCodeGrant, "refresh_token"],
    response_types_supported: [],
    token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
    token_endpoint_auth_signing_alg_values_supported: dpopAlgorithms,
    introspection_endpoint_auth_methods_supported: ["client_secret_basic", "bearer"],
    revocation_endpoint_auth_methods_supported: ["client_secret_basic", "bearer", "none"],
    dpop_signing_alg_values_supported: dpopAlgorithms,
    access_token_signing_alg_values_supported: ["ES256"],
  };
}

function send(res: NodeServerResponse, status: number, body: unknown, headers: Record<string, string | string[]> = {}) {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", ...headers });
  res.end(JSON.stringify(body));
}

/**
 * The OAuth and well-known routes, each naming the RPC it is the HTTP face
 * of. The form endpoints share one shape: POST, a bounded form body, and
 * failures as RFC 6749 §5.2 JSON errors with the challenge the client's
 * scheme calls for.
 */
export function oauthRoutes(deps: OAuthDeps): HttpRoute[] {
  const metadata = (name: string, body: () => unknown): HttpRoute[] => {
    // An issuer with a path also has its metadata where RFC 8414 §3.1 (and
    // RFC 9728 §3.1) put it: the well-known segment between host and path.
    const issuerPath = new URL(deps.publicUrl).pathname.replace(/\/$/, "");
    const paths = [`/.well-known/${name}`, ...(issuerPath ? [`/.well-known/${name}${issuerPath}`] : [])];
    return paths.map((path) => ({
      method: "GET",
      path,
      handle: async (_req, res) => send(res, 200, body(), { "cache-control": "public, max-age=300" }),
    }));
  };
  const form = (
    path: string,
    shares: DescMethod,
    endpoint: (form: URLSearchParams, call: CallSite) => Promise<unknown>,
  ): HttpRoute => ({
    method: "POST",
    path,
    shares,
    async handle(req, res, origin) {
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        if (typeof value === "string" && !name.startsWith(":")) headers.set(name, value);
      }
      const call: CallSite = { ...origin, headers, method: "POST", url: `${deps.publicUrl}${path}` };
      try {
        if (!String(req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded")) {
          throw invalidArgument([{ field: "content-type", description: "must be application/x-www-form-urlencoded" }]);
        }
        const body = await readForm(req, maxFormBytes);
        if (!body) throw invalidArgument([{ field: "body", description: "larger than 64 KiB" }]);
        send(res, 200, await endpoint(body, call));
      } catch (error) {
        const out = toOAuthError(error, { presented: presentedScheme(req.headers.authorization), dpopAlgorithms });
        if (out.status >= 500)
          deps.log.error({ err: error, requestId: origin.requestId, path }, "oauth endpoint failed");
        send(res, out.status, out.body, out.headers);
      }
    },
  });
  return [
    {
      method: "GET",
      path: "/.well-known/jwks.json",
      shares: TokenService.method.getJwks,
      handle: async (_req, res) =>
        send(res, 200, { keys: deps.tokens.keyRing.snapshot.jwks }, { "cache-control": "public, max-age=60" }),
    },
    ...metadata("oauth-authorization-server", () => authorizationServerMetadata(deps.publicUrl)),
    // RFC 9728: the broker's own API is a resource protected by itself.
    ...metadata("oauth-protected-resource", () => ({
      resource: deps.publicUrl,
      authorization_servers: [deps.publicUrl],
      bearer_methods_supported: ["header"],
      dpop_signing_alg_values_supported: dpopAlgorithms,
      dpop_bound_access_tokens_required: false,
    })),
    form("/oauth/token", TokenService.method.mintToken, (body, call) => token(deps, body, call)),
    form("/oauth/device_authorization", DeviceAuthService.method.beginDeviceAuthorization, (body, call) =>
      deviceAuthorization(deps, body, call),
    ),
    form("/oauth/introspect", TokenService.method.introspectToken, (body, call) => introspect(deps, body, call)),
    form("/oauth/revoke", TokenService.method.revokeToken, (body, call) => revoke(deps, body, call)),
  ];
}

/** RFC 6749 §2.3.1 client_secret_basic: `client_id:client_secret`, each form-urlencoded. */
function basicCredentials(headers: Headers): { clientId: string; secret: string } | undefined {
  const match = /^Basic +([A-Za-z0-9+/=]+) *$/i.exec(headers.get("authorization") ?? "");
  if (!match) return undefined;
  const decoded = Buffer.from(match[1] as string, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) throw unauthenticated("malformed Basic credentials");
  return {
    clientId: decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, " ")),
    secret: decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, " ")),
  };
}

/** RFC 8628 §3.1–3.2. Public clients name themselves with `client_id`. */
async function deviceAuthorization(deps: OAuthDeps, form: URLSearchParams, call: CallSite) {
  const request = {
    clientId: form.get("client_id") ?? "",
    scopes: (form.get("scope") ?? "").split(" ").filter(Boolean),
    audience: form.get("audience") ?? form.get("resource") ?? "",
  };
  assertValid(deps.validator, BeginDeviceAuthorizationRequestSchema, request);
  const begun = await beginDeviceAuthorization(deps.device, call, request);
  return {
    device_code: begun.deviceCode,
    user_code: begun.userCode,
    verification_uri: begun.verificationUri,
    verification_uri_complete: begun.verificationUriComplete,
    expires_in: begun.expiresIn,
    interval: begun.interval,
  };
}

function tokenResponse(tokens: TokenSet) {
  return {
    access_token: tokens.accessToken,
    token_type: tokens.tokenType,
    expires_in: tokens.expiresIn,
    scope: tokens.scope,
    refresh_token: tokens.refreshToken,
  };
}

async function token(deps: OAuthDeps, form: URLSearchParams, call: CallSite) {
  const grantType = form.get("grant_type");
  if (!grantType) throw invalidArgument([{ field: "grant_type", description: "is required (RFC 6749 §4.4.2)" }]);
  const clientId = form.get("client_id") ?? "";
  if (grantType === deviceCodeGrant) {
    return tokenResponse(
      await exchangeDeviceCode(deps.device, call, { clientId, deviceCode: form.get("device_code") ?? "" }),
    );
  }
  if (grantType === "refresh_token") {
    return tokenResponse(
      await refreshAccessToken(deps.device, call, { clientId, refreshToken: form.get("refresh_token") ?? "" }),
    );
  }
  if (grantType !== "client_credentials") {
    throw new DomainError(
      "invalid_argument",
      "UNSUPPORTED_GRANT_TYPE",
      `grant_type ${String(grantType).slice(0, 60)} is not supported`,
    );
  }
  const basic = basicCredentials(call.headers);
  const clientName = basic?.clientId ?? clientId;
  const secret = basic?.secret ?? form.get("client_secret") ?? "";
  const assertion =
    form.get("client_assertion_type") === jwtBearerAssertion ? (form.get("client_assertion") ?? "") : "";
  const audience = form.get("audience") ?? form.get("resource") ?? deps.publicUrl;
  // The same client authentication as MintToken's in the RPC pipeline, through the same limit.
  let caller: Caller;
  try {
    caller = await deps.tokens.authFailures.check(call.clientAddress, async () => {
      const dpop = call.headers.get("dpop");
      const client = await authenticateClient(deps.clients, {
        ...(secret ? { secret } : {}),
        ...(assertion ? { assertion } : {}),
        ...(dpop ? { dpop } : {}),
        method: call.method,
        url: call.url,
      });
      if (clientName && clientName !== client.principalId) {
        throw unauthenticated(`client_id ${clientName.slice(0, 40)} does not match the credential`);
      }
      return client;
    });
  } catch (error) {
    if (error instanceof DomainError) {
      const base = { requestId: call.requestId, tenantId: null, actorId: null, client: call.client };
      await deps.audit.denied(base, "token.mint", audience, error);
    }
    throw error;
  }
  const request = {
    audience,
    scopes: (form.get("scope") ?? "").split(" ").filter(Boolean),
    lifetimeSeconds: 0,
    clientAssertion: assertion,
  };
  // MintToken's request rules, after authentication as in the RPC pipeline.
  assertValid(deps.validator, MintTokenRequestSchema, request);
  const minted = await mintToken(deps.tokens, call, caller, request);
  return {
    access_token: minted.accessToken,
    token_type: minted.tokenType,
    expires_in: minted.expiresIn,
    scope: minted.scope,
  };
}

/** The caller of introspection and revocation: a Bearer/DPoP credential, or Basic with an API key. */
async function authenticateCaller(deps: OAuthDeps, call: CallSite): Promise<Caller> {
  const basic = basicCredentials(call.headers);
  const headers = new Headers(call.headers);
  if (basic) headers.set("authorization", `Bearer ${basic.secret}`);
  const caller = await deps.authenticator.authenticate(readCredentials(headers, call));
  if (!caller || (basic && basic.clientId !== caller.principalId))
    throw unauthenticated("client authentication failed");
  return caller;
}

async function guarded<T>(deps: OAuthDeps, call: CallSite, action: string, work: (caller: Caller) => Promise<T>) {
  let caller: Caller | undefined;
  try {
    caller = await deps.tokens.authFailures.check(call.clientAddress, () => authenticateCaller(deps, call));
    return await work(caller);
  } catch (error) {
    if (error instanceof DomainError && (error.code === "unauthenticated" || error.code === "permission_denied")) {
      await deps.audit.denied(
        {
          requestId: call.requestId,
          tenantId: caller?.tenantId ?? null,
          actorId: caller?.principalId ?? null,
          client: call.client,
        },
        action,
        "",
        error,
      );
    }
    throw error;
  }
}

function introspect(deps: OAuthDeps, form: URLSearchParams, call: CallSite) {
  return guarded(deps, call, "introspect.token", async (caller) => {
    if (!caller.scopes.has("introspect.token")) throw missingGrant("introspect.token");
    const claims = await introspectToken(deps.tokens, caller, form.get("token") ?? "");
    if (!claims) return { active: false };
    return { active: true, token_type: claims.cnf ? "DPoP" : "Bearer", ...claims };
  });
}

async function revoke(deps: OAuthDeps, form: URLSearchParams, call: CallSite) {
  // RFC 7009 §2.1: a public client revokes its own refresh token by client_id alone.
  const token = form.get("token") ?? "";
  if (token.startsWith("aegis_rt_")) {
    await revokeRefreshToken(deps.device, call, form.get("client_id") ?? "", token);
    return {};
  }
  // ... and its access token the same way, as the metadata's `none` method promises.
  const clientId = form.get("client_id");
  if (clientId && !call.headers.has("authorization")) {
    try {
      await deps.tokens.authFailures.check(call.clientAddress, () =>
        revokeTokenAsPublicClient(deps.tokens, call, clientId, token),
      );
    } catch (error) {
      if (error instanceof DomainError && error.code === "unauthenticated") {
        const base = { requestId: call.requestId, tenantId: null, actorId: null, client: call.client };
        await deps.audit.denied(base, "token.revoke", "", error);
      }
      throw error;
    }
    return {};
  }
  return guarded(deps, call, "token.revoke", async (caller) => {
    const audit = {
      requestId: call.requestId,
      tenantId: caller.tenantId,
      actorId: caller.principalId,
      client: call.client,
    };
    await revokeToken(deps.tokens, caller, audit, { jti: "", token: form.get("token") ?? "" });
    return {};
  });
}
