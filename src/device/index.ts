// The device authorization grant (RFC 8628): its RPCs, its verification page,
// its refresh tokens and the OAuth clients that use it.
import type { BrokerContext } from "../core/context.js";
import { type BrokerModule, served } from "../core/module.js";
import { type DeviceDeps, pruneDeviceFlow } from "./device-grant.js";
import { DeviceAuthService, deviceService } from "./device-service.js";
import { verificationPage } from "./verification-page.js";

export { beginDeviceAuthorization } from "./begin.js";
export { type DeviceDeps, refreshTokenHashPurpose, type TokenSet } from "./device-grant.js";
export { exchangeDeviceCode } from "./exchange.js";
export { refreshAccessToken, revokeRefreshToken } from "./refresh.js";

export function deviceModule(ctx: BrokerContext, device: DeviceDeps): BrokerModule {
  return {
    name: "device",
    services: [served(DeviceAuthService, deviceService(ctx, device))],
    routes: verificationPage({ ctx, device }),
    jobs: [{ name: "device flow prune", everyMs: 60_000, run: (now) => pruneDeviceFlow(ctx.prisma, now) }],
  };
}
