// Resource servers: the APIs a tenant protects, their scope catalogues and
// token policies. Peers use `audienceOf` (tokens: is this audience
// registered, with what policy) and `administers` (grants: who may give a
// server's scopes).
import type { BrokerContext } from "../core/context.js";
import type { NodeServerResponse } from "../core/http.js";
import { type BrokerModule, served } from "../core/module.js";
import { dpopAlgorithms } from "../protocol/dpop.js";
import { isId } from "../protocol/ids.js";
import { forgetAudiences } from "./audiences.js";
import { ResourceServerService, resourceServerService } from "./resource-server-service.js";

export {
  type Audience,
  assertApplicationScopesHeld,
  assertBindingAllowed,
  audienceOf,
  catalogueScopes,
  forgetAudiences,
  heldApplicationScopes,
  lifetimeFor,
} from "./audiences.js";
export { brokerServerId } from "./resource-server-service.js";
export {
  type ResourceServerWithScopes,
  resourceServerOfPrincipal,
} from "./resource-servers.js";

const metadataPath = /^\/resource-servers\/([a-z0-9_]{1,40})\/oauth-protected-resource$/;

/**
 * RFC 9728 metadata of a registered resource server, for the server to
 * serve at its own `/.well-known/oauth-protected-resource` (its identifier's
 * host), or for clients that know its id.
 */
function metadataRoute(ctx: BrokerContext) {
  const send = (res: NodeServerResponse, status: number, body: object, cache: string) => {
    res.writeHead(status, { "content-type": "application/json", "cache-control": cache });
    res.end(JSON.stringify(body));
  };
  return {
    method: "GET" as const,
    path: "/resource-servers/*",
    async handle(req: { url?: string | undefined }, res: NodeServerResponse) {
      const id = metadataPath.exec((req.url ?? "").split("?")[0] ?? "")?.[1];
      const server =
        id && isId("resourceServer", id)
          ? await ctx.prisma.resourceServer.findUnique({ where: { id }, include: { scopes: true } })
          : null;
      if (!server) return send(res, 404, { error: "not_found" }, "no-store");
      send(
        res,
        200,
        {
          resource: server.identifier,
          authorization_servers: [ctx.config.publicUrl],
          jwks_uri: `${ctx.config.publicUrl}/.well-known/jwks.json`,
          scopes_supported: server.scopes.filter((s) => !s.deprecated).map((s) => s.name),
          bearer_methods_supported: ["header"],
          resource_name: server.displayName,
          dpop_signing_alg_values_supported: dpopAlgorithms,
          dpop_bound_access_tokens_required: server.requireDpop,
        },
        "public, max-age=60",
      );
    },
  };
}

export function resourceServersModule(ctx: BrokerContext, actions: readonly string[]): BrokerModule {
  return {
    name: "resource-servers",
    services: [served(ResourceServerService, resourceServerService(ctx, actions))],
    routes: [metadataRoute(ctx)],
    onRevocation: (entry) => forgetAudiences(ctx.prisma, entry.subject),
  };
}
