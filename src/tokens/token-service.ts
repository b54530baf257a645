// TokenService handlers.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { Prisma, SigningKey } from "../../gen/prisma/client.js";
import { SigningKeyState, TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import { auditBase, callerOf, callSite } from "../core/call.js";
import type { BrokerContext } from "../core/context.js";
import { RevocationFeed } from "../core/revocation-feed.js";
import { mintToken } from "./mint.js";
import { revokeToken } from "./revoke.js";
import { listSigningKeys, retireSigningKey, rotateSigningKeys } from "./signing-keys.js";
import type { TokenDeps } from "./token-deps.js";
import { mintUserApiToken } from "./user-api-tokens.js";
import { introspectToken } from "./verify.js";

export { TokenService };

/**
 * How long anyone may keep the JWKS (GetJwks and /.well-known/jwks.json):
 * the same for every caller, so shared caches may too. Retired keys drop
 * out of verifiers' caches within it.
 */
export const jwksCacheControl = "public, max-age=60";

const states = {
  next: SigningKeyState.NEXT,
  active: SigningKeyState.ACTIVE,
  retiring: SigningKeyState.RETIRING,
  retired: SigningKeyState.RETIRED,
} as const satisfies Record<SigningKey["state"], SigningKeyState>;

export function tokenService(ctx: BrokerContext, tokens: TokenDeps): ServiceImpl<typeof TokenService> {
  /** Changes the key set in one audited transaction and tells every instance. */
  const changeKeys = async (
    call: HandlerContext,
    action: string,
    target: string,
    change: (tx: Prisma.TransactionClient) => Promise<void>,
  ) => {
    const now = ctx.clock.now();
    await ctx.audit.transaction(
      async (tx) => {
        await change(tx);
        await RevocationFeed.publish(tx, {
          kind: "signing_keys",
          subject: "*",
          expiresAt: new Date(now.getTime() + 3_600_000),
        });
      },
      () => ({ ...auditBase(call), action, target, outcome: "success", reason: "" }),
    );
    await tokens.keyRing.reload();
    return { keys: (await listSigningKeys(ctx.prisma)).map(toSigningKey) };
  };

  return {
    async mintToken(req, call) {
      return mintToken(tokens, callSite(ctx.config.publicUrl, call), callerOf(call), req);
    },
    async introspectToken(req, call) {
      const claims = await introspectToken(tokens, callerOf(call), req.token);
      if (!claims) return { active: false };
      return {
        active: true,
        scope: claims.scope,
        clientId: claims.client_id,
        sub: claims.sub,
        aud: claims.aud,
        iss: claims.iss,
        exp: timestampFromDate(new Date(claims.exp * 1000)),
        iat: timestampFromDate(new Date(claims.iat * 1000)),
        jti: claims.jti,
        tokenType: claims.cnf?.jkt ? "DPoP" : "Bearer",
        tenantId: claims.tenant_id,
        cnfJkt: claims.cnf?.jkt ?? "",
      };
    },
    async revokeToken(req, call) {
      await revokeToken(tokens, callerOf(call), auditBase(call), req);
      return {};
    },
    async mintUserApiToken(req, call) {
      const token = await mintUserApiToken(ctx, callerOf(call), auditBase(call), req);
      return {
        tokenId: token.id,
        secret: token.secret,
        scopes: [...token.scopes],
        expireTime: timestampFromDate(token.expiresAt),
      };
    },
    getJwks(_req, call) {
      call.responseHeader.set("cache-control", jwksCacheControl);
      return {
        keys: tokens.keyRing.snapshot.jwks.map((k) => ({
          kid: k.kid,
          kty: String(k.kty),
          crv: String(k.crv),
          x: String(k.x),
          y: String(k.y),
          alg: String(k.alg),
          use: "sig",
        })),
      };
    },
    async listSigningKeys() {
      return { keys: (await listSigningKeys(ctx.prisma)).map(toSigningKey) };
    },
    rotateSigningKeys(_req, call) {
      return changeKeys(call, "signing_key.rotate", "", (tx) =>
        rotateSigningKeys(tx, ctx.rootKey, ctx.clock, ctx.config.tokenLifetime.maxSeconds),
      );
    },
    retireSigningKey(req, call) {
      return changeKeys(call, "signing_key.retire", req.kid, (tx) => retireSigningKey(tx, ctx.rootKey, req.kid));
    },
  };
}

function toSigningKey(key: SigningKey) {
  return {
    kid: key.kid,
    state: states[key.state],
    createTime: timestampFromDate(key.createdAt),
    ...(key.retireAt ? { retireTime: timestampFromDate(key.retireAt) } : {}),
  };
}
