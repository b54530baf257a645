// ResourceServerService handlers: decode, call one domain function, encode.
// The broker itself answers as the built-in server `broker`, whose catalogue
// is its own actions (from the proto options).
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { PrincipalKind } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { ResourceServerService } from "../../gen/proto/aegis/resourceserver/v1/resource_server_pb.js";
import { auditBase, callerOf } from "../core/call.js";
import type { BrokerContext } from "../core/context.js";
import { durationOfSeconds, optionalSeconds } from "../core/duration.js";
import { readPage } from "../core/pagination.js";
import { principalKinds } from "../principals/index.js";
import { selectorKeysOf } from "../protocol/scope.js";
import {
  createResourceServer,
  deleteResourceServer,
  getResourceServer,
  listResourceServers,
  type PrincipalKindName,
  type ResourceServerWithScopes,
  type ScopeInput,
  updateResourceServer,
} from "./resource-servers.js";

export { ResourceServerService };

/** The id under which the broker describes itself. */
export const brokerServerId = "broker";

const kindNames = {
  [PrincipalKind.PERSON]: "person",
  [PrincipalKind.AGENT]: "agent",
  [PrincipalKind.SERVICE]: "service",
} as const satisfies Partial<Record<PrincipalKind, PrincipalKindName>>;

function scopeInputs(scopes: readonly { name: string; description: string; principalKinds: PrincipalKind[] }[]) {
  return scopes.map(
    (s): ScopeInput => ({
      name: s.name,
      description: s.description,
      // Request rules allow only defined, specified kinds.
      principalKinds: s.principalKinds.map((k) => kindNames[k as keyof typeof kindNames]),
    }),
  );
}

function toResourceServer(server: ResourceServerWithScopes) {
  return {
    id: server.id,
    tenantId: server.tenantId,
    identifier: server.identifier,
    displayName: server.displayName,
    description: server.description,
    scopes: server.scopes.map((s) => ({
      name: s.name,
      description: s.description,
      deprecated: s.deprecated,
      principalKinds: s.principalKinds
        .split(" ")
        .filter(Boolean)
        .map((k) => principalKinds[k as PrincipalKindName]),
    })),
    defaultTokenLifetime: durationOfSeconds(server.defaultLifetimeSeconds),
    maxTokenLifetime: durationOfSeconds(server.maxLifetimeSeconds),
    requireDpop: server.requireDpop,
    principalId: server.principalId,
    builtIn: false,
    createTime: timestampFromDate(server.createdAt),
    updateTime: timestampFromDate(server.updatedAt),
  };
}

/** The broker as a resource server: its actions are its scopes, with their selector grammar. */
function brokerServer(ctx: BrokerContext, actions: readonly string[]) {
  const { defaultSeconds, maxSeconds } = ctx.config.tokenLifetime;
  return {
    id: brokerServerId,
    identifier: ctx.config.publicUrl,
    displayName: "Aegis Broker",
    description: "The broker's own API; its scopes are its actions.",
    scopes: actions.map((name) => {
      const keys = selectorKeysOf(name);
      return {
        name,
        description: keys ? `takes a selector: ${keys.map((k) => `${k}:<value>`).join(":")}` : "",
        principalKinds: [],
      };
    }),
    defaultTokenLifetime: durationOfSeconds(defaultSeconds),
    maxTokenLifetime: durationOfSeconds(maxSeconds),
    builtIn: true,
  };
}

export function resourceServerService(
  ctx: BrokerContext,
  actions: readonly string[],
): ServiceImpl<typeof ResourceServerService> {
  return {
    async createResourceServer(req, call) {
      const server = await createResourceServer(ctx, callerOf(call), auditBase(call), {
        identifier: req.identifier,
        displayName: req.displayName,
        description: req.description,
        scopes: scopeInputs(req.scopes),
        defaultTokenLifetimeSeconds: optionalSeconds(req.defaultTokenLifetime) ?? 0,
        maxTokenLifetimeSeconds: optionalSeconds(req.maxTokenLifetime) ?? 0,
        requireDpop: req.requireDpop,
      });
      return { resourceServer: toResourceServer(server) };
    },
    async getResourceServer(req, call) {
      if (req.resourceServerId === brokerServerId) return { resourceServer: brokerServer(ctx, actions) };
      return { resourceServer: toResourceServer(await getResourceServer(ctx, callerOf(call), req.resourceServerId)) };
    },
    async listResourceServers(req, call) {
      const page = await listResourceServers(ctx, callerOf(call), readPage(req));
      return { resourceServers: page.items.map(toResourceServer), nextPageToken: page.nextPageToken };
    },
    async updateResourceServer(req, call) {
      const server = await updateResourceServer(ctx, callerOf(call), auditBase(call), req.resourceServerId, {
        displayName: req.displayName,
        description: req.description,
        defaultTokenLifetimeSeconds: optionalSeconds(req.defaultTokenLifetime),
        maxTokenLifetimeSeconds: optionalSeconds(req.maxTokenLifetime),
        requireDpop: req.requireDpop,
        addScopes: scopeInputs(req.addScopes),
        deprecateScopes: req.deprecateScopes,
        restoreScopes: req.restoreScopes,
      });
      return { resourceServer: toResourceServer(server) };
    },
    async deleteResourceServer(req, call) {
      await deleteResourceServer(ctx, callerOf(call), auditBase(call), req.resourceServerId, req.force);
      return {};
    },
  };
}
