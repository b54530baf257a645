// Broker tokens: minting, offline verification, introspection, revocation,
// user API tokens and the signing keys.
import type { BrokerContext } from "../core/context.js";
import { type BrokerModule, served } from "../core/module.js";
import type { TokenDeps } from "./token-deps.js";
import { TokenService, tokenService } from "./token-service.js";

export type { CallSite } from "../core/call.js";
export { issueAccessToken, type MintedToken, mintToken } from "./mint.js";
export { revokeToken, revokeTokenAsPublicClient } from "./revoke.js";
export { ensureSigningKeys, KeyRing } from "./signing-keys.js";
export { type TokenDeps, VerifiedTokens } from "./token-deps.js";
export { jwksCacheControl } from "./token-service.js";
export { introspectToken, tokenAuthenticator } from "./verify.js";

export function tokensModule(ctx: BrokerContext, tokens: TokenDeps): BrokerModule {
  return {
    name: "tokens",
    services: [served(TokenService, tokenService(ctx, tokens))],
    // Re-read the key set, so retiring keys drop out of the JWKS on time.
    jobs: [{ name: "signing key reload", everyMs: 60_000, run: () => tokens.keyRing.reload() }],
  };
}
