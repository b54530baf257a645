// The grants people give public clients: the device authorization grant
// (RFC 8628) with its verification page, and the authorization code grant
// with PKCE (RFC 6749 §4.1, RFC 7636) with its authorization endpoint; their
// RPCs, the refresh tokens both issue, the people's sign-in on the broker's
// pages, and the registry of OAuth clients that use them.
import type { BrokerContext } from "../core/context.js";
import { type BrokerModule, served } from "../core/module.js";
import { authorizePage } from "./authorize-page.js";
import { type DeviceDeps, pruneDeviceFlow } from "./device-grant.js";
import { DeviceAuthService, deviceService } from "./device-service.js";
import { verificationPage } from "./verification-page.js";
import { webSignIn } from "./web-sign-in.js";

export { exchangeAuthorizationCode } from "./authorization-code.js";
export { beginDeviceAuthorization } from "./begin.js";
export { registerDeveloperPortalClient } from "./clients.js";
export { type DeviceDeps, refreshTokenHashPurpose, type TokenSet } from "./device-grant.js";
export { exchangeDeviceCode } from "./exchange.js";
export { refreshAccessToken, revokeRefreshToken } from "./refresh.js";

export function deviceModule(ctx: BrokerContext, device: DeviceDeps): BrokerModule {
  // One sign-in (and so one per-account backoff) for both pages.
  const signIn = webSignIn(ctx, device.signInBackoff);
  return {
    name: "device",
    services: [served(DeviceAuthService, deviceService(ctx, device))],
    routes: [...verificationPage({ ctx, device, signIn }), ...authorizePage({ ctx, device, signIn })],
    jobs: [{ name: "device flow prune", everyMs: 60_000, run: (now) => pruneDeviceFlow(ctx.prisma, now) }],
  };
}
