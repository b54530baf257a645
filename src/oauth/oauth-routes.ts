// The standard OAuth endpoints, so off-the-shelf OAuth libraries work with
// nothing but the metadata URL. They are thin: each names the RPC it stands
// for and translates the shapes the RFCs define (form bodies, client
// credentials of RFC 6749 §2.3, JSON errors of §5.2) to and from that RPC's
// request. Authentication, the RPC's policy, its request rules and the
// refusal audit are the pipeline's (SharedPolicyRoute); then the same domain
// functions as the RPCs.

import { create, type DescMethod } from "@bufbuild/protobuf";
import {
  type BeginDeviceAuthorizationRequest,
  BeginDeviceAuthorizationRequestSchema,
  DeviceAuthService,
  type ExchangeAuthorizationCodeRequest,
  ExchangeAuthorizationCodeRequestSchema,
  type ExchangeDeviceCodeRequest,
  ExchangeDeviceCodeRequestSchema,
  type RefreshAccessTokenRequest,
  RefreshAccessTokenRequestSchema,
} from "../../gen/proto/aegis/device/v1/device_pb.js";
import {
  GetJwksRequestSchema,
  type IntrospectTokenRequest,
  IntrospectTokenRequestSchema,
  type MintTokenRequest,
  MintTokenRequestSchema,
  type RevokeTokenRequest,
  RevokeTokenRequestSchema,
  TokenService,
} from "../../gen/proto/aegis/token/v1/token_pb.js";
import type { Caller } from "../core/caller.js";
import { DomainError, invalidArgument, unauthenticated } from "../core/errors/domain-error.js";
import { toOAuthError } from "../core/errors/oauth-error.js";
import { presentedScheme } from "../core/errors/www-authenticate.js";
import { type NodeServerRequest, type NodeServerResponse, readForm } from "../core/http.js";
import type { HttpCall, HttpRoute, PresentedClient, SharedPolicyRoute, SharedRequest } from "../core/module.js";
import {
  beginDeviceAuthorization,
  type DeviceDeps,
  exchangeAuthorizationCode,
  exchangeDeviceCode,
  refreshAccessToken,
  revokeRefreshToken,
  type TokenSet,
} from "../device/index.js";
import { dpopAlgorithms } from "../protocol/dpop.js";
import {
  introspectToken,
  jwksCacheControl,
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
  readonly publicUrl: string;
}

export function authorizationServerMetadata(issuer: string) {
  return {
    issuer,
    authorization_endpoint: `${issuer}/oauth/authorize`,
    token_endpoint: `${issuer}/oauth/token`,
    device_authorization_endpoint: `${issuer}/oauth/device_authorization`,
    jwks_uri: `${issuer}/.well-known/jwks.json`,
    introspection_endpoint: `${issuer}/oauth/introspect`,
    revocation_endpoint: `${issuer}/oauth/revoke`,
    grant_types_supported: ["authorization_code", "client_credentials", deviceCodeGrant, "refresh_token"],
    response_types_supported: ["code"],
    response_modes_supported: ["query"],
    code_challenge_methods_supported: ["S256"],
    // RFC 9207: every authorization response names its issuer.
    authorization_response_iss_parameter_supported: true,
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
  const form = <Decoded>(
    path: string,
    shares: DescMethod,
    read: (form: URLSearchParams, headers: NodeServerRequest["headers"]) => SharedRequest<Decoded>,
    answer: (call: HttpCall, decoded: Decoded) => Promise<unknown>,
  ): SharedPolicyRoute<Decoded> => ({
    method: "POST",
    path,
    shares,
    async read(req) {
      if (!String(req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded")) {
        throw invalidArgument([{ field: "content-type", description: "must be application/x-www-form-urlencoded" }]);
      }
      const body = await readForm(req, maxFormBytes);
      if (!body) throw invalidArgument([{ field: "body", description: "larger than 64 KiB" }]);
      return read(body, req.headers);
    },
    serve: async (res, call, decoded) => send(res, 200, await answer(call, decoded)),
    refuse(req, res, error) {
      const out = toOAuthError(error, { presented: presentedScheme(req.headers.authorization), dpopAlgorithms });
      send(res, out.status, out.body, out.headers);
    },
  });
  return [
    {
      method: "GET",
      path: "/.well-known/jwks.json",
      shares: TokenService.method.getJwks,
      read: async () => ({ message: create(GetJwksRequestSchema), decoded: undefined }),
      serve: async (res) =>
        send(res, 200, { keys: deps.tokens.keyRing.snapshot.jwks }, { "cache-control": jwksCacheControl }),
      refuse(_req, res, error) {
        const out = toOAuthError(error, { presented: presentedScheme(undefined), dpopAlgorithms });
        send(res, out.status, out.body, out.headers);
      },
    } satisfies SharedPolicyRoute<undefined>,
    ...metadata("oauth-authorization-server", () => authorizationServerMetadata(deps.publicUrl)),
    // RFC 9728: the broker's own API is a resource protected by itself.
    ...metadata("oauth-protected-resource", () => ({
      resource: deps.publicUrl,
      authorization_servers: [deps.publicUrl],
      bearer_methods_supported: ["header"],
      dpop_signing_alg_values_supported: dpopAlgorithms,
      dpop_bound_access_tokens_required: false,
    })),
    form(
      "/oauth/token",
      TokenService.method.mintToken,
      (body, headers) => tokenRequest(deps, body, headers),
      (call, request) => token(deps, call, request),
    ),
    form(
      "/oauth/device_authorization",
      DeviceAuthService.method.beginDeviceAuthorization,
      (body) => {
        const message = create(BeginDeviceAuthorizationRequestSchema, {
          clientId: body.get("client_id") ?? "",
          scopes: (body.get("scope") ?? "").split(" ").filter(Boolean),
          audience: body.get("audience") ?? body.get("resource") ?? "",
        });
        return { message, decoded: message };
      },
      (call, request) => deviceAuthorization(deps, call, request),
    ),
    form(
      "/oauth/introspect",
      TokenService.method.introspectToken,
      (body, headers) => {
        const message = create(IntrospectTokenRequestSchema, { token: body.get("token") ?? "" });
        return { message, ...basicClient(headers), decoded: message };
      },
      (call, request) => introspect(deps, call, request),
    ),
    form(
      "/oauth/revoke",
      TokenService.method.revokeToken,
      (body, headers) => {
        const message = create(RevokeTokenRequestSchema, { jti: "", token: body.get("token") ?? "" });
        // RFC 7009 §2.1: a public client revokes its own tokens by client_id
        // alone (the metadata's `none` method); the domain checks the token
        // was issued to it.
        const clientId = body.get("client_id") ?? "";
        const publicClient = message.token.startsWith("aegis_rt_") || (clientId !== "" && !headers.authorization);
        return { message, publicClient, ...basicClient(headers), decoded: { message, clientId, publicClient } };
      },
      (call, request) => revoke(deps, call, request),
    ),
  ];
}

/** RFC 6749 §2.3.1 client_secret_basic: `client_id:client_secret`, each form-urlencoded. */
function basicCredentials(authorization: string | undefined): { clientId: string; secret: string } | undefined {
  const match = /^Basic +([A-Za-z0-9+/=]+) *$/i.exec(authorization ?? "");
  if (!match) return undefined;
  const decoded = Buffer.from(match[1] as string, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) throw unauthenticated("malformed Basic credentials");
  return {
    clientId: decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, " ")),
    secret: decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, " ")),
  };
}

/** The client of client_secret_basic, if the request carries one. */
function basicClient(headers: NodeServerRequest["headers"]): { client?: PresentedClient } {
  const basic = basicCredentials(headers.authorization);
  return basic ? { client: { id: basic.clientId, secret: basic.secret } } : {};
}

/** RFC 8628 §3.1–3.2. Public clients name themselves with `client_id`. */
async function deviceAuthorization(deps: OAuthDeps, call: HttpCall, request: BeginDeviceAuthorizationRequest) {
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

type TokenRequest =
  | { readonly grant: "device_code"; readonly message: ExchangeDeviceCodeRequest }
  | { readonly grant: "authorization_code"; readonly message: ExchangeAuthorizationCodeRequest }
  | { readonly grant: "refresh_token"; readonly message: RefreshAccessTokenRequest }
  | { readonly grant: "client_credentials"; readonly message: MintTokenRequest };

/**
 * RFC 6749 §4: the grant type names the RPC the request stands for. The
 * client credentials grant is MintToken's, with the client authenticated
 * from Basic or the form (§2.3.1) or by an RFC 7523 assertion.
 */
function tokenRequest(
  deps: OAuthDeps,
  form: URLSearchParams,
  headers: NodeServerRequest["headers"],
): SharedRequest<TokenRequest> {
  const grantType = form.get("grant_type");
  if (!grantType) throw invalidArgument([{ field: "grant_type", description: "is required (RFC 6749 §4.4.2)" }]);
  const clientId = form.get("client_id") ?? "";
  if (grantType === deviceCodeGrant) {
    const message = create(ExchangeDeviceCodeRequestSchema, { clientId, deviceCode: form.get("device_code") ?? "" });
    return { rpc: DeviceAuthService.method.exchangeDeviceCode, message, decoded: { grant: "device_code", message } };
  }
  if (grantType === "authorization_code") {
    // RFC 6749 §4.1.3 with RFC 7636 §4.5; a public client names itself (§3.2.1).
    const message = create(ExchangeAuthorizationCodeRequestSchema, {
      clientId,
      code: form.get("code") ?? "",
      redirectUri: form.get("redirect_uri") ?? "",
      codeVerifier: form.get("code_verifier") ?? "",
    });
    return {
      rpc: DeviceAuthService.method.exchangeAuthorizationCode,
      message,
      decoded: { grant: "authorization_code", message },
    };
  }
  if (grantType === "refresh_token") {
    const message = create(RefreshAccessTokenRequestSchema, {
      clientId,
      refreshToken: form.get("refresh_token") ?? "",
    });
    return { rpc: DeviceAuthService.method.refreshAccessToken, message, decoded: { grant: "refresh_token", message } };
  }
  if (grantType !== "client_credentials") {
    throw new DomainError(
      "invalid_argument",
      "UNSUPPORTED_GRANT_TYPE",
      `grant_type ${String(grantType).slice(0, 60)} is not supported`,
    );
  }
  const basic = basicCredentials(headers.authorization);
  const secret = basic?.secret ?? form.get("client_secret") ?? "";
  const assertion =
    form.get("client_assertion_type") === jwtBearerAssertion ? (form.get("client_assertion") ?? "") : "";
  const message = create(MintTokenRequestSchema, {
    audience: form.get("audience") ?? form.get("resource") ?? deps.publicUrl,
    scopes: (form.get("scope") ?? "").split(" ").filter(Boolean),
    clientAssertion: assertion,
  });
  return {
    rpc: TokenService.method.mintToken,
    message,
    client: {
      ...((basic?.clientId ?? clientId) ? { id: basic?.clientId ?? clientId } : {}),
      ...(secret ? { secret } : {}),
      ...(assertion ? { assertion } : {}),
    },
    decoded: { grant: "client_credentials", message },
  };
}

async function token(deps: OAuthDeps, call: HttpCall, request: TokenRequest) {
  switch (request.grant) {
    case "device_code":
      return tokenResponse(await exchangeDeviceCode(deps.device, call, request.message));
    case "authorization_code":
      return tokenResponse(await exchangeAuthorizationCode(deps.device, call, request.message));
    case "refresh_token":
      return tokenResponse(await refreshAccessToken(deps.device, call, request.message));
    case "client_credentials": {
      const minted = await mintToken(deps.tokens, call, callerOf(call), request.message);
      return {
        access_token: minted.accessToken,
        token_type: minted.tokenType,
        expires_in: minted.expiresIn,
        scope: minted.scope,
      };
    }
  }
}

/** The caller the pipeline authenticated (the route's RPC is not anonymous). */
function callerOf(call: HttpCall): Caller {
  if (!call.caller) throw new Error("route of an authenticated RPC served without a caller");
  return call.caller;
}

async function introspect(deps: OAuthDeps, call: HttpCall, request: IntrospectTokenRequest) {
  const claims = await introspectToken(deps.tokens, callerOf(call), request.token);
  if (!claims) return { active: false };
  return { active: true, token_type: claims.cnf ? "DPoP" : "Bearer", ...claims };
}

async function revoke(
  deps: OAuthDeps,
  call: HttpCall,
  request: { message: RevokeTokenRequest; clientId: string; publicClient: boolean },
) {
  const { message, clientId } = request;
  if (message.token.startsWith("aegis_rt_")) {
    await revokeRefreshToken(deps.device, call, clientId, message.token);
  } else if (request.publicClient) {
    await revokeTokenAsPublicClient(deps.tokens, call, clientId, message.token);
  } else {
    const caller = callerOf(call);
    const audit = {
      requestId: call.requestId,
      tenantId: caller.tenantId,
      actorId: caller.principalId,
      client: call.client,
    };
    await revokeToken(deps.tokens, caller, audit, { jti: "", token: message.token });
  }
  return {};
}
