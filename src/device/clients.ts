// OAuth clients of a tenant: public clients (CLIs, local MCP tools) that use
// the device flow. A client may ask for no more than its registrar holds.
// Name and audiences arrive within their request rules (device.proto).
import type { OAuthClient } from "../../gen/prisma/client.js";
import type { AuditBase } from "../core/audit.js";
import type { Caller } from "../core/caller.js";
import type { BrokerContext } from "../core/context.js";
import { notFound } from "../core/errors/domain-error.js";
import { assertCovers, parseScopes } from "../policy/scope-checks.js";
import { newId } from "../protocol/ids.js";
import { formatScope } from "../protocol/scope.js";

export async function createOAuthClient(
  ctx: Pick<BrokerContext, "audit">,
  caller: Caller,
  auditBase: AuditBase,
  input: { name: string; allowedScopes: readonly string[]; allowedAudiences: readonly string[] },
): Promise<OAuthClient> {
  const scopes = parseScopes("allowed_scopes", input.allowedScopes, { wildcards: true });
  assertCovers(caller, scopes, "a client with these scopes");
  return ctx.audit.transaction(
    (tx) =>
      tx.oAuthClient.create({
        data: {
          id: newId("oauthClient"),
          tenantId: caller.tenantId,
          name: input.name.trim(),
          allowedScopes: scopes.map(formatScope).join(" "),
          allowedAudiences: input.allowedAudiences.join(" "),
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
