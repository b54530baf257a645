// Every service the broker serves, in one place: the router registration and
// the list the health monitor and the policy check walk.
import type { ConnectRouter } from "@connectrpc/connect";
import { AgentService, agentService } from "../agents/agent-service.js";
import { AuditService, auditService } from "../audit/audit-service.js";
import type { BrokerContext } from "../core/context.js";
import { CredentialService, credentialService } from "../credentials/credential-service.js";
import type { DeviceDeps } from "../device/device-flow.js";
import { DeviceAuthService, deviceService } from "../device/device-service.js";
import { GrantService, grantService } from "../grants/grant-service.js";
import { Health, type HealthMonitor, healthService } from "../health/health-service.js";
import { LeaseService, leaseService } from "../leases/lease-service.js";
import { PrincipalService, principalService } from "../principals/principal-service.js";
import { TenantService, tenantService } from "../tenants/tenant-service.js";
import { TokenService, tokenService } from "../tokens/token-service.js";
import type { TokenDeps } from "../tokens/tokens.js";

export const services = [
  TenantService,
  PrincipalService,
  AgentService,
  GrantService,
  TokenService,
  CredentialService,
  LeaseService,
  DeviceAuthService,
  AuditService,
  Health,
] as const;

export function routes(ctx: BrokerContext, health: HealthMonitor, tokens: TokenDeps, device: DeviceDeps) {
  return (router: ConnectRouter) => {
    router.service(AgentService, agentService(ctx));
    router.service(TokenService, tokenService(ctx, tokens));
    router.service(GrantService, grantService(ctx));
    router.service(CredentialService, credentialService(ctx));
    router.service(LeaseService, leaseService(ctx));
    router.service(DeviceAuthService, deviceService(ctx, device));
    router.service(TenantService, tenantService(ctx));
    router.service(PrincipalService, principalService(ctx));
    router.service(AuditService, auditService(ctx));
    router.service(Health, healthService(health, ctx.closing));
  };
}
