// Revoking broker tokens (RFC 7009): by jti or token, by the owner, a holder
// of token.revoke, or a public client naming itself; unknown, expired or
// foreign tokens are a silent no-op.
import type { AuditBase } from "../core/audit.js";
import type { CallSite } from "../core/call.js";
import { type Caller, isElevated } from "../core/caller.js";
import { invalidArgument, permissionDenied, unauthenticated } from "../core/errors/domain-error.js";
import { latestTokenExpiry, RevocationFeed } from "../core/revocation-feed.js";
import { verifyAccessTokenJwt } from "../protocol/access-token.js";
import { type JtiFacts, parseJti } from "../protocol/jti.js";
import type { TokenDeps } from "./token-deps.js";

/** What a revocation request names: the token's id, owner and expiry, when it names one of ours. */
async function revocationSubject(
  deps: TokenDeps,
  request: { jti: string; token: string },
): Promise<(JtiFacts & { jti: string; tenantId?: string; clientId?: string }) | undefined> {
  if (request.jti) {
    const facts = parseJti(request.jti);
    return facts && { ...facts, jti: request.jti };
  }
  if (!request.token) throw invalidArgument([{ field: "jti", description: "give a jti or a token" }]);
  try {
    const claims = await verifyAccessTokenJwt(request.token, deps.keyRing.lookup, {
      issuer: deps.config.publicUrl,
      now: deps.clock.now(),
      clockToleranceSeconds: 365 * 86_400, // an expired token may still be revoked (no-op)
    });
    return {
      jti: claims.jti,
      principalId: claims.sub,
      exp: claims.exp,
      tenantId: claims.tenant_id,
      clientId: claims.client_id,
    };
  } catch {
    return undefined;
  }
}

/** RFC 7009: revoke by jti or token; unknown, expired or foreign tokens are a silent no-op. */
export async function revokeToken(
  deps: TokenDeps,
  caller: Caller,
  auditBase: AuditBase,
  request: { jti: string; token: string },
): Promise<void> {
  // Counted before anything is looked up: made-up jtis are what a flood would send.
  await deps.revokeLimiter.hit(caller.principalId, "token revocations by this caller");
  const token = await revocationSubject(deps, request);
  if (!token) return;
  const expiresAt = new Date(token.exp * 1000);
  const now = deps.clock.now();
  // A jti's expiry is the caller's word: one past any token's life names no
  // token, and publishing it would keep a feed entry (on every instance) that long.
  if (expiresAt <= now || expiresAt > latestTokenExpiry(now, deps.config.tokenLifetime.maxSeconds)) return;
  const owned = token.principalId === caller.principalId;
  const tenantId = owned
    ? caller.tenantId
    : (token.tenantId ??
      (await deps.prisma.principal.findUnique({ where: { id: token.principalId }, select: { tenantId: true } }))
        ?.tenantId);
  if (tenantId !== caller.tenantId && !isElevated(caller)) return; // looks like an unknown token
  if (!owned && !caller.scopes.has("token.revoke") && !isElevated(caller))
    throw permissionDenied("NOT_TOKEN_OWNER", "only the token's owner or a holder of token.revoke may revoke it");
  await publishRevocation(deps, auditBase, token.jti, expiresAt, "");
}

/** Writes a token's revocation to the feed in one audited transaction and applies it here at once. */
async function publishRevocation(
  deps: TokenDeps,
  auditBase: AuditBase,
  jti: string,
  expiresAt: Date,
  reason: string,
): Promise<void> {
  const entry = { kind: "token" as const, subject: jti, expiresAt };
  await deps.audit.transaction(
    (tx) => RevocationFeed.publish(tx, entry),
    () => ({ ...auditBase, action: "token.revoke", target: jti, outcome: "success", reason }),
  );
  deps.feed.apply(entry);
}

/**
 * RFC 7009 §2.1: a public client (a CLI, a local MCP tool: no secret to
 * authenticate with) revokes an access token issued to it by naming itself.
 * Only registered public clients may, and only tokens whose `client_id` is
 * theirs; an unknown or expired token is a silent no-op, as for everyone.
 */
export async function revokeTokenAsPublicClient(
  deps: TokenDeps,
  site: Pick<CallSite, "requestId" | "client">,
  clientId: string,
  text: string,
): Promise<void> {
  const client = clientId.length <= 40 ? await deps.prisma.oAuthClient.findUnique({ where: { id: clientId } }) : null;
  if (!client || client.disabled) throw unauthenticated(`public client ${clientId.slice(0, 40)} unknown or disabled`);
  await deps.revokeLimiter.hit(`client:${client.id}`, "token revocations by this client");
  const token = await revocationSubject(deps, { jti: "", token: text });
  if (!token) return;
  if (token.clientId !== client.id) {
    throw unauthenticated(`token ${token.jti} was issued to ${token.clientId}, not to ${client.id}`);
  }
  const expiresAt = new Date(token.exp * 1000);
  if (expiresAt <= deps.clock.now()) return;
  const auditBase = {
    requestId: site.requestId,
    tenantId: token.tenantId ?? null,
    actorId: token.principalId,
    client: site.client,
  };
  await publishRevocation(deps, auditBase, token.jti, expiresAt, `public client ${client.id}`);
}
