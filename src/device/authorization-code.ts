// Authorization codes (RFC 6749 §4.1): issued when a signed-in person
// approves on the authorization page, redeemed at the token endpoint with the
// PKCE verifier (RFC 7636 §4.6).
//
// - A code is 256 random bits, stored only as its SHA-256, valid 60 s.
// - It is bound to the client, the exact redirect URI, the S256 challenge,
//   the person (and so their tenant), the approved scopes and the audience;
//   a redemption must match every binding.
// - It is redeemed once, however many requests race (one conditional
//   update). Presenting it again fails and revokes the refresh token family
//   and access tokens the first redemption issued (RFC 6749 §4.1.2, RFC 9700
//   §4.2.4): a second use means the code leaked.
import { createHash } from "node:crypto";
import { checkDpop } from "../auth/dpop-check.js";
import type { AuditBase } from "../core/audit.js";
import { sameSecret } from "../crypto/constant-time.js";
import { newId } from "../protocol/ids.js";
import { base62Alphabet, randomText } from "../protocol/random-text.js";
import type { CallSite } from "../tokens/index.js";
import type { PersonRequest } from "./authorize-request.js";
import { redirectUrisOf } from "./clients.js";
import {
  activeClient,
  audited,
  type DeviceDeps,
  issueTokenSet,
  outcome,
  sha256,
  type TokenSet,
} from "./device-grant.js";
import { revokeFamily } from "./refresh.js";

export const codeSeconds = 60;
const verifierPattern = /^[A-Za-z0-9._~-]{43,128}$/;

/** Issues a code for what the person approved; the approval is audited with it. */
export async function issueAuthorizationCode(
  deps: Pick<DeviceDeps, "audit" | "clock">,
  auditBase: AuditBase,
  request: PersonRequest,
  principalId: string,
  tenantId: string,
  scopes: readonly string[],
): Promise<string> {
  const code = randomText(base62Alphabet, 43);
  await deps.audit.transaction(
    (tx) =>
      tx.authorizationCode.create({
        data: {
          id: newId("authorizationCode"),
          codeHash: sha256(code),
          tenantId,
          clientId: request.client.id,
          principalId,
          redirectUri: request.redirectUri,
          codeChallenge: request.codeChallenge,
          scopes: scopes.join(" "),
          audience: request.audience,
          expiresAt: new Date(deps.clock.now().getTime() + codeSeconds * 1000),
        },
      }),
    (row) => ({
      ...auditBase,
      action: "authorize.approve",
      target: row.id,
      outcome: "success",
      reason: `client ${request.client.id} audience ${row.audience} scopes ${row.scopes}`.slice(0, 500),
    }),
  );
  return code;
}

export interface CodeRedemption {
  readonly clientId: string;
  readonly code: string;
  readonly redirectUri: string;
  readonly codeVerifier: string;
}

export function exchangeAuthorizationCode(deps: DeviceDeps, site: CallSite, input: CodeRedemption): Promise<TokenSet> {
  return audited(deps, site, "authorization_code.exchange", () => redeem(deps, site, input));
}

async function redeem(deps: DeviceDeps, site: CallSite, input: CodeRedemption): Promise<TokenSet> {
  const client = await activeClient(deps.prisma, input.clientId);
  if (redirectUrisOf(client).length === 0) throw outcome.unauthorizedClient(`client ${client.id} has no redirect URI`);
  const row =
    input.code.length <= 100
      ? await deps.prisma.authorizationCode.findUnique({ where: { codeHash: sha256(input.code) } })
      : null;
  if (!row || row.clientId !== client.id) throw outcome.invalidGrant("unknown authorization code");
  if (row.redeemedAt) return reused(deps, site, row.id, row.familyId);
  const now = deps.clock.now();
  if (row.expiresAt <= now) throw outcome.invalidGrant(`authorization code ${row.id} expired`);
  if (input.redirectUri !== row.redirectUri) throw outcome.invalidGrant("redirect_uri differs from the request's");
  // RFC 7636 §4.6: BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge.
  const challenge = createHash("sha256").update(input.codeVerifier, "ascii").digest("base64url");
  if (!verifierPattern.test(input.codeVerifier) || !sameSecret(challenge, row.codeChallenge)) {
    throw outcome.invalidGrant("code_verifier does not match the code_challenge");
  }
  const proof = site.headers.get("dpop");
  const jkt = proof ? await checkDpop(deps, proof, site) : undefined;
  const familyId = newId("refreshToken");
  // Exactly once, whatever the number of concurrent redemptions; the family
  // is recorded first, so a later reuse finds what to revoke.
  const claimed = await deps.prisma.authorizationCode.updateMany({
    where: { id: row.id, redeemedAt: null },
    data: { redeemedAt: now, familyId },
  });
  if (claimed.count !== 1) {
    const winner = await deps.prisma.authorizationCode.findUnique({
      where: { id: row.id },
      select: { familyId: true },
    });
    return reused(deps, site, row.id, winner?.familyId ?? null);
  }
  const tokens = await issueTokenSet(deps, site, {
    principalId: row.principalId,
    clientId: client.id,
    scopes: row.scopes.split(" ").filter(Boolean),
    audience: row.audience,
    familyId,
    ...(jkt ? { jkt } : {}),
  });
  // A reuse that came while these were being issued found nothing yet to revoke.
  const after = await deps.prisma.authorizationCode.findUnique({ where: { id: row.id }, select: { reusedAt: true } });
  if (after?.reusedAt) return reused(deps, site, row.id, familyId);
  await deps.audit.append({
    requestId: site.requestId,
    tenantId: row.tenantId,
    actorId: row.principalId,
    client: site.client,
    action: "authorization_code.exchange",
    target: row.id,
    outcome: "success",
    reason: `client ${client.id} family ${familyId}${jkt ? " dpop" : ""}`,
  });
  return tokens;
}

/**
 * A code presented again: marked, and the family its redemption issued is
 * revoked. The mark covers a redemption still issuing (it looks after
 * issuing); the revocation covers one that has finished.
 */
async function reused(deps: DeviceDeps, site: CallSite, codeId: string, familyId: string | null): Promise<never> {
  const now = deps.clock.now();
  await deps.prisma.authorizationCode.updateMany({ where: { id: codeId, reusedAt: null }, data: { reusedAt: now } });
  if (familyId) await revokeFamily(deps, site, familyId, `authorization code ${codeId} presented again`);
  throw outcome.invalidGrant(`authorization code ${codeId} presented again: its tokens are revoked`);
}
