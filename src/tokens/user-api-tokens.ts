// User API tokens: a person's long-lived, revocable credential for their own
// automation (`aegis_ut_…`). Stored and checked like an API key, but limited
// to a fixed list of exact scopes, each covered by the person's grants when
// minted and again on every use (so taking a grant away narrows the token).
// Minting one is issuing a credential: the credential presented must cover
// every grant of the person (policy/credential-issuance.ts), so a narrowed
// credential cannot mint itself a wider one, and may not outlive it, so an
// expiring one cannot mint itself a longer-lived one.

import type { Duration } from "@bufbuild/protobuf/wkt";
import { apiKeyHashPurpose, issueApiKey } from "../auth/api-keys.js";
import type { AuditBase } from "../core/audit.js";
import { type Caller, elevatedScope } from "../core/caller.js";
import type { BrokerContext } from "../core/context.js";
import { optionalSeconds } from "../core/duration.js";
import { permissionDenied } from "../core/errors/domain-error.js";
import { assertNotOutliving, credentialHolderFor } from "../policy/credential-issuance.js";
import { assertCovers, parseScopes } from "../policy/scope-checks.js";
import { formatScope, isSpecific } from "../protocol/scope.js";
import { assertApplicationScopesHeld, audienceOf, catalogueScopes } from "../resource-servers/index.js";

// Label, lifetime (at most 400 days) and the number of scopes (1 to 50) are
// request rules (aegis/token/v1/token.proto), enforced before this runs.
const defaultTtlSeconds = 90 * 86_400;

export interface MintedUserApiToken {
  readonly id: string;
  readonly secret: string;
  readonly scopes: readonly string[];
  readonly expiresAt: Date;
}

export async function mintUserApiToken(
  ctx: Pick<BrokerContext, "audit" | "clock" | "rootKey" | "prisma" | "config">,
  caller: Caller,
  auditBase: AuditBase,
  input: { scopes: readonly string[]; label: string; ttl?: Duration | undefined; audience: string },
): Promise<MintedUserApiToken> {
  const ttl = optionalSeconds(input.ttl) ?? defaultTtlSeconds;
  if (input.audience !== "" && input.audience !== ctx.config.publicUrl) {
    return mintApplicationToken(ctx, caller, auditBase, { ...input, ttl });
  }
  const scopes = parseScopes("scopes", input.scopes, { wildcards: true });
  const asked = scopes.map(formatScope);
  const held = [...caller.scopes].join(" ");
  if (caller.kind !== "person") {
    throw permissionDenied("PERSONS_ONLY", "only people mint user API tokens", `asked ${asked.join(" ")}`);
  }
  const vague = scopes.filter((s) => !isSpecific(s)).map(formatScope);
  if (vague.length > 0) {
    throw permissionDenied(
      "SCOPE_NOT_SPECIFIC",
      `every scope must name one exact target (no *, every selector key): ${vague.join(" ").slice(0, 300)}`,
      `asked ${asked.join(" ")}; not specific ${vague.join(" ")}; held ${held}`,
    );
  }
  if (asked.includes(elevatedScope)) {
    throw permissionDenied("SCOPE_ESCALATION", "the elevated grant cannot go into a user API token");
  }
  assertCovers(caller, scopes, "this user API token");
  return issueUserApiToken(ctx, caller, auditBase, { label: input.label, ttl, scopes: asked }, asked.join(" "));
}

/**
 * Issues the token, once the credential presented covers every grant of
 * its owner and outlives the token (the issuance rules), in one audited
 * transaction.
 */
async function issueUserApiToken(
  ctx: Pick<BrokerContext, "audit" | "clock" | "rootKey">,
  caller: Caller,
  auditBase: AuditBase,
  token: { label: string; ttl: number; scopes: string[]; resourceServerId?: string },
  reason: string,
): Promise<MintedUserApiToken> {
  const expiresAt = new Date(ctx.clock.now().getTime() + token.ttl * 1000);
  const issued = await ctx.audit.transaction(
    async (tx) => {
      await credentialHolderFor(tx, caller, caller.principalId, "a user API token");
      assertNotOutliving(caller, expiresAt, "this user API token");
      return issueApiKey(tx, ctx.rootKey.deriveKey(apiKeyHashPurpose), {
        tenantId: caller.tenantId,
        principalId: caller.principalId,
        label: token.label,
        expiresAt,
        scopes: token.scopes,
        ...(token.resourceServerId ? { resourceServerId: token.resourceServerId } : {}),
      });
    },
    (key) => ({
      ...auditBase,
      action: "token.user.create",
      target: key.id,
      outcome: "success",
      reason: reason.slice(0, 500),
    }),
  );
  return { id: issued.id, secret: issued.secret, scopes: token.scopes, expiresAt };
}

/**
 * A user API token for one resource server: its scopes are that server's,
 * from its catalogue and held by the person through the credential
 * presented; it carries no broker scope and mints tokens only for that server.
 */
async function mintApplicationToken(
  ctx: Pick<BrokerContext, "audit" | "clock" | "rootKey" | "prisma" | "config">,
  caller: Caller,
  auditBase: AuditBase,
  input: { scopes: readonly string[]; label: string; ttl: number; audience: string },
): Promise<MintedUserApiToken> {
  if (caller.kind !== "person") {
    throw permissionDenied("PERSONS_ONLY", "only people mint user API tokens", `asked ${input.scopes.join(" ")}`);
  }
  const target = await audienceOf(ctx, caller.tenantId, input.audience);
  if (target.kind !== "resource") throw new Error("unreachable: the broker's audience takes broker scopes");
  const { server } = target;
  const scopes = catalogueScopes(server, input.scopes, caller.kind);
  await assertApplicationScopesHeld(ctx.prisma, caller, server, scopes, "this user API token");
  return issueUserApiToken(
    ctx,
    caller,
    auditBase,
    { label: input.label, ttl: input.ttl, scopes, resourceServerId: server.id },
    `${server.id} ${scopes.join(" ")}`,
  );
}
