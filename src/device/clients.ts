// The one registry of OAuth clients, all public (RFC 6749 §2.1: no secret):
// a tenant's CLIs, local MCP tools and native apps, which use the device
// flow and, with redirect URIs, the authorization code grant; and the
// broker's own developer portal, registered at every start with no tenant
// (people of every tenant sign in to it), whose one redirect URI follows the
// broker's public URL. A client may ask for no more than its registrar
// holds: broker scopes the credential presented covers, and audiences that
// are resource servers of the tenant it administers or holds scopes on.
// Name, audiences and redirect URIs arrive within their request rules
// (device.proto); what a redirect URI may be is checked here.
import type { OAuthClient } from "../../gen/prisma/client.js";
import type { AuditBase } from "../core/audit.js";
import type { Caller } from "../core/caller.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError, invalidArgument, notFound, permissionDenied } from "../core/errors/domain-error.js";
import { administers, assertCovers, parseScopes } from "../policy/scope-checks.js";
import { newId } from "../protocol/ids.js";
import { formatScope } from "../protocol/scope.js";
import { developerPortalCallbackPath, developerPortalClientId } from "../protocol/well-known.js";
import { audienceOf, heldApplicationScopes } from "../resource-servers/index.js";

const loopbackHosts = ["127.0.0.1", "[::1]"];

/**
 * Whether `text` may be registered as a redirect URI (RFC 6749 §3.1.2,
 * RFC 8252 §7): absolute, no fragment; `https`, or `http` on a loopback
 * address (not `localhost`, RFC 8252 §8.3), or a private-use scheme of
 * reverse-domain form (`com.example.app:/callback`, §7.1).
 */
export function redirectUriProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return "is not an absolute URI";
  }
  if (url.hash || text.includes("#")) return "must not have a fragment";
  if (url.protocol === "https:") return url.host ? undefined : "needs a host";
  if (url.protocol === "http:") {
    return loopbackHosts.includes(url.hostname) ? undefined : "http is only for loopback (127.0.0.1, [::1])";
  }
  if (/^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+:$/.test(url.protocol)) return undefined;
  return "must be https, http on a loopback address, or a reverse-domain private-use scheme";
}

/**
 * Whether `presented` is one of the client's registered redirect URIs:
 * compared as strings, exactly (RFC 6749 §3.1.2.3; OAuth 2.1 §2.3.1), except
 * that a loopback URI registered without a port matches it with any port
 * (RFC 8252 §7.3: the native app picks a free port at run time).
 */
export function matchesRedirectUri(registered: readonly string[], presented: string): boolean {
  if (registered.includes(presented)) return true;
  let url: URL;
  try {
    url = new URL(presented);
  } catch {
    return false;
  }
  const origin = `http://${url.host}`;
  if (url.protocol !== "http:" || !loopbackHosts.includes(url.hostname) || !url.port) return false;
  if (!presented.startsWith(origin)) return false;
  const withoutPort = `http://${url.hostname}${presented.slice(origin.length)}`;
  return registered.some((r) => r === withoutPort && new URL(r).port === "");
}

export const redirectUrisOf = (client: OAuthClient): string[] => client.redirectUris.split(" ").filter(Boolean);

/**
 * The audiences a client may be registered for, deduplicated: the broker, or
 * a resource server of the caller's tenant that the credential presented
 * administers or holds scopes on. A client allowed any other server would
 * ask that server's users to consent to scopes its registrar has no part in.
 */
async function allowedAudiences(
  ctx: Pick<BrokerContext, "prisma" | "config">,
  caller: Caller,
  identifiers: readonly string[],
): Promise<string[]> {
  const audiences = [...new Set(identifiers)];
  for (const identifier of audiences) {
    const field = `allowed_audiences[${identifiers.indexOf(identifier)}]`;
    const target = await audienceOf(ctx, caller.tenantId, identifier).catch((error: unknown) => {
      if (!(error instanceof DomainError) || error.reason !== "INVALID_TARGET") throw error;
      throw new DomainError("invalid_argument", "INVALID_TARGET", `${field}: ${error.message}`, {
        fieldViolations: [{ field, description: "not the broker nor a resource server registered in this tenant" }],
      });
    });
    if (target.kind === "broker" || administers(caller, target.server.id)) continue;
    if ((await heldApplicationScopes(ctx.prisma, caller, target.server.id)).size > 0) continue;
    throw permissionDenied(
      "SCOPE_ESCALATION",
      `a client for ${identifier.slice(0, 100)} needs a credential that administers that resource server or holds scopes on it; the one presented does neither`,
      `${caller.credentialType} ${caller.credentialId} has no part in ${target.server.id}`,
    );
  }
  return audiences;
}

export async function createOAuthClient(
  ctx: Pick<BrokerContext, "audit" | "prisma" | "config">,
  caller: Caller,
  auditBase: AuditBase,
  input: {
    name: string;
    allowedScopes: readonly string[];
    allowedAudiences: readonly string[];
    redirectUris?: readonly string[];
  },
): Promise<OAuthClient> {
  const scopes = parseScopes("allowed_scopes", input.allowedScopes, { wildcards: true });
  const redirectUris = [...new Set(input.redirectUris ?? [])];
  const bad = redirectUris.flatMap((uri, i) => {
    const problem = redirectUriProblem(uri);
    return problem ? [{ field: `redirect_uris[${i}]`, description: problem }] : [];
  });
  if (bad.length) throw invalidArgument(bad);
  assertCovers(caller, scopes, "a client with these scopes");
  const audiences = await allowedAudiences(ctx, caller, input.allowedAudiences);
  return ctx.audit.transaction(
    (tx) =>
      tx.oAuthClient.create({
        data: {
          id: newId("oauthClient"),
          tenantId: caller.tenantId,
          name: input.name.trim(),
          allowedScopes: scopes.map(formatScope).join(" "),
          allowedAudiences: audiences.join(" "),
          redirectUris: redirectUris.join(" "),
        },
      }),
    (client) => ({ ...auditBase, action: "oauth_client.create", target: client.id, outcome: "success", reason: "" }),
  );
}

export async function disableOAuthClient(
  ctx: Pick<BrokerContext, "audit">,
  caller: Caller,
  auditBase: AuditBase,
  clientId: string,
): Promise<OAuthClient> {
  return ctx.audit.transaction(
    async (tx) => {
      const client = await tx.oAuthClient.findFirst({ where: { id: clientId, tenantId: caller.tenantId } });
      if (!client) throw notFound("client", "CLIENT_NOT_FOUND");
      return tx.oAuthClient.update({ where: { id: client.id }, data: { disabled: true } });
    },
    () => ({ ...auditBase, action: "oauth_client.disable", target: clientId, outcome: "success", reason: "" }),
  );
}

/**
 * Registers the developer portal's client, or brings it up to date: no
 * tenant, every action the broker offers (each person gets no more than
 * they hold), the broker and any resource server of the person's tenant as
 * audiences, and exactly one redirect URI, `<public URL>/developer/callback`.
 * Run at every start, so a changed public URL moves the redirect URI with it.
 */
export async function registerDeveloperPortalClient(
  ctx: Pick<BrokerContext, "audit" | "prisma">,
  publicUrl: string,
  allowedScopes: readonly string[],
): Promise<void> {
  const wanted = {
    tenantId: null,
    name: "Aegis developer portal",
    allowedScopes: allowedScopes.join(" "),
    allowedAudiences: "",
    redirectUris: `${publicUrl.replace(/\/$/, "")}${developerPortalCallbackPath}`,
    disabled: false,
  };
  const current = await ctx.prisma.oAuthClient.findUnique({ where: { id: developerPortalClientId } });
  if (current && Object.entries(wanted).every(([k, v]) => current[k as keyof typeof wanted] === v)) return;
  await ctx.audit.transaction(
    async (tx) => {
      // Several instances may start at once: whoever comes second updates.
      await tx.oAuthClient.createMany({ data: [{ id: developerPortalClientId, ...wanted }], skipDuplicates: true });
      await tx.oAuthClient.update({ where: { id: developerPortalClientId }, data: wanted });
    },
    () => ({
      requestId: "startup",
      tenantId: null,
      actorId: null,
      client: "broker",
      action: "oauth_client.register",
      target: developerPortalClientId,
      outcome: "success",
      reason: `redirect ${wanted.redirectUris}`.slice(0, 500),
    }),
  );
}
