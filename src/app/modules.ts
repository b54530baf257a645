// The modules of this broker, in one list: the composition root iterates it
// (services into the router, routes into the HTTP router, jobs onto timers,
// revocations to each module, close in reverse). Adding a capability is
// adding its module here.
import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { AgentService } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { ApiKeyService } from "../../gen/proto/aegis/apikey/v1/apikey_pb.js";
import { AuditService } from "../../gen/proto/aegis/audit/v1/audit_pb.js";
import { CredentialService } from "../../gen/proto/aegis/credential/v1/credential_pb.js";
import { DeviceAuthService } from "../../gen/proto/aegis/device/v1/device_pb.js";
import { GrantService } from "../../gen/proto/aegis/grant/v1/grant_pb.js";
import { KeyService } from "../../gen/proto/aegis/kms/v1/kms_pb.js";
import { LeaseService } from "../../gen/proto/aegis/lease/v1/lease_pb.js";
import { PersonService } from "../../gen/proto/aegis/person/v1/person_pb.js";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { ResourceServerService } from "../../gen/proto/aegis/resourceserver/v1/resource_server_pb.js";
import { RoleService } from "../../gen/proto/aegis/role/v1/role_pb.js";
import { TenantService } from "../../gen/proto/aegis/tenant/v1/tenant_pb.js";
import { TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import { Health } from "../../gen/proto/grpc/health/v1/health_pb.js";
import { ServerReflection } from "../../gen/proto/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionAlpha } from "../../gen/proto/grpc/reflection/v1alpha/reflection_pb.js";
import { agentsModule } from "../agents/index.js";
import { apiKeysModule } from "../apikeys/index.js";
import { auditModule } from "../audit/index.js";
import type { BrokerContext } from "../core/context.js";
import type { BrokerModule, HttpRoute, PeriodicJob } from "../core/module.js";
import { credentialsModule } from "../credentials/index.js";
import { developerModule } from "../developer/index.js";
import { type DeviceDeps, deviceModule } from "../device/index.js";
import { grantsModule } from "../grants/index.js";
import { type KeyOpMetrics, kmsModule } from "../kms/index.js";
import { leasesModule } from "../leases/index.js";
import { type OAuthDeps, oauthModule } from "../oauth/index.js";
import { peopleModule } from "../people/index.js";
import { tenantAdminScopes } from "../policy/admin-scopes.js";
import { principalsModule } from "../principals/index.js";
import { reflectionModule } from "../reflection/index.js";
import { resourceServersModule } from "../resource-servers/index.js";
import { rolesModule } from "../roles/index.js";
import { tenantsModule } from "../tenants/index.js";
import { type TokenDeps, tokensModule } from "../tokens/index.js";

/**
 * Every service the broker serves (health included), known before any module
 * is built: bootstrap grants their actions, the health monitor knows their
 * names, and a test walks their policies. `moduleServices` below checks the
 * modules serve exactly these.
 */
export const services: readonly DescService[] = [
  TenantService,
  PrincipalService,
  PersonService,
  AgentService,
  ApiKeyService,
  GrantService,
  ResourceServerService,
  RoleService,
  TokenService,
  CredentialService,
  LeaseService,
  KeyService,
  DeviceAuthService,
  AuditService,
  Health,
  ServerReflection,
  ServerReflectionAlpha,
];

export interface ModuleDeps {
  readonly ctx: BrokerContext;
  readonly tokens: TokenDeps;
  readonly device: DeviceDeps;
  readonly oauth: OAuthDeps;
  /** The broker's own actions (its catalogue as a resource server). */
  readonly actions: readonly string[];
  /** What the KMS counts (src/core/metrics.ts). */
  readonly metrics: KeyOpMetrics;
}

/** The domain modules (health and the kernel's own housekeeping are added by the broker). */
export function domainModules({ ctx, tokens, device, oauth, actions, metrics }: ModuleDeps): BrokerModule[] {
  return [
    tenantsModule(ctx, tenantAdminScopes(services)),
    principalsModule(ctx),
    peopleModule(ctx),
    agentsModule(ctx),
    apiKeysModule(ctx),
    grantsModule(ctx),
    resourceServersModule(ctx, actions),
    rolesModule(ctx, services),
    tokensModule(ctx, tokens),
    credentialsModule(ctx),
    leasesModule(ctx),
    kmsModule(ctx, metrics),
    deviceModule(ctx, device),
    auditModule(ctx),
    oauthModule(oauth),
    developerModule(),
    reflectionModule(services),
  ];
}

/** Registers every module's services, refusing a service served twice or one `services` does not list. */
export function registerServices(modules: readonly BrokerModule[]) {
  return (router: ConnectRouter) => {
    const seen = new Set<string>();
    for (const module of modules) {
      for (const { service, implementation } of module.services ?? []) {
        if (seen.has(service.typeName)) throw new Error(`${service.typeName} is served by two modules`);
        if (!services.includes(service)) throw new Error(`${service.typeName} is missing from app/modules.ts services`);
        seen.add(service.typeName);
        router.service(service, implementation);
      }
    }
    const missing = services.filter((s) => !seen.has(s.typeName)).map((s) => s.typeName);
    if (missing.length > 0) throw new Error(`no module serves ${missing.join(", ")}`);
  };
}

export const routesOf = (modules: readonly BrokerModule[]): HttpRoute[] => modules.flatMap((m) => m.routes ?? []);
export const jobsOf = (modules: readonly BrokerModule[]): PeriodicJob[] => modules.flatMap((m) => m.jobs ?? []);
