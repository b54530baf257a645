// Broker tokens: minting, offline verification, introspection, revocation,
// user API tokens and the signing keys.
import type { BrokerContext } from "../core/context.js";
import { type BrokerModule, served } from "../core/module.js";
import { TokenService, tokenService } from "./token-service.js";
import type { TokenDeps } from "./tokens.js";

export { ensureSigningKeys, KeyRing } from "./signing-keys.js";
export {
  type CallSite,
  introspectToken,
  issueAccessToken,
  type MintedToken,
  mintToken,
  revokeToken,
  revokeTokenAsPublicClient,
  type TokenDeps,
  tokenAuthenticator,
  VerifiedTokens,
} from "./tokens.js";

export function tokensModule(ctx: BrokerContext, tokens: TokenDeps): BrokerModule {
  return {
    name: "tokens",
    services: [served(TokenService, tokenService(ctx, tokens))],
    // Re-read the key set, so retiring keys drop out of the JWKS on time.
    jobs: [{ name: "signing key reload", everyMs: 60_000, run: () => tokens.keyRing.reload() }],
  };
}
