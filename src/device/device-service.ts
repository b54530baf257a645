// DeviceAuthService handlers: decode, call one domain function, encode.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { OAuthClient } from "../../gen/prisma/client.js";
import { DeviceAuthService, type OAuthClientSchema } from "../../gen/proto/aegis/device/v1/device_pb.js";
import { auditBase, callerOf, callOf, callSite } from "../core/call.js";
import type { BrokerContext } from "../core/context.js";
import { setLocalPassword } from "../people/index.js";
import { decideDeviceAuthorization } from "./approve.js";
import { exchangeAuthorizationCode } from "./authorization-code.js";
import { beginDeviceAuthorization } from "./begin.js";
import { createOAuthClient, disableOAuthClient } from "./clients.js";
import type { DeviceDeps } from "./device-grant.js";
import { exchangeDeviceCode } from "./exchange.js";
import { refreshAccessToken } from "./refresh.js";

export { DeviceAuthService };

export function deviceService(ctx: BrokerContext, device: DeviceDeps): ServiceImpl<typeof DeviceAuthService> {
  return {
    async beginDeviceAuthorization(req, call) {
      return beginDeviceAuthorization(device, callSite(ctx.config.publicUrl, call), req);
    },
    async exchangeDeviceCode(req, call) {
      return { tokens: await exchangeDeviceCode(device, callSite(ctx.config.publicUrl, call), req) };
    },
    async exchangeAuthorizationCode(req, call) {
      return { tokens: await exchangeAuthorizationCode(device, callSite(ctx.config.publicUrl, call), req) };
    },
    async refreshAccessToken(req, call) {
      return { tokens: await refreshAccessToken(device, callSite(ctx.config.publicUrl, call), req) };
    },
    async approveDeviceAuthorization(req, call) {
      const scopes = await decideDeviceAuthorization(
        device,
        callerOf(call),
        auditBase(call),
        callOf(call).clientAddress,
        {
          userCode: req.userCode,
          approve: true,
          scopes: req.scopes,
        },
      );
      return { scopes };
    },
    async denyDeviceAuthorization(req, call) {
      await decideDeviceAuthorization(device, callerOf(call), auditBase(call), callOf(call).clientAddress, {
        userCode: req.userCode,
        approve: false,
        scopes: [],
      });
      return {};
    },
    async createOAuthClient(req, call) {
      return { client: toClient(await createOAuthClient(ctx, callerOf(call), auditBase(call), req)) };
    },
    async disableOAuthClient(req, call) {
      return { client: toClient(await disableOAuthClient(ctx, callerOf(call), auditBase(call), req.clientId)) };
    },
    async setLocalPassword(req, call) {
      await setLocalPassword(ctx, callerOf(call), auditBase(call), req);
      return {};
    },
  };
}

function toClient(client: OAuthClient): MessageInitShape<typeof OAuthClientSchema> {
  return {
    id: client.id,
    name: client.name,
    allowedScopes: client.allowedScopes.split(" ").filter(Boolean),
    allowedAudiences: client.allowedAudiences.split(" ").filter(Boolean),
    redirectUris: client.redirectUris.split(" ").filter(Boolean),
    disabled: client.disabled,
    createTime: timestampFromDate(client.createdAt),
  };
}
