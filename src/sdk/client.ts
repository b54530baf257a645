// `aegis-broker/client`: the generated Connect descriptors of the broker's
// public services, for calling the broker from TypeScript or JavaScript with
// connect-es. A service is public when any of its methods is
// (`(aegis.options.v1.policy).visibility`); TenantService, private as a
// whole, is left out. Methods that are private inside a public service (the
// signing-key RPCs of TokenService, VerifyAuditChain) stay in its
// descriptor and are refused unless the caller holds `broker.admin`.
// Each service's messages and enums come as one namespace per proto package
// (`lease.CreateLeaseRequestSchema`); createClient and createConnectTransport
// are re-exported so a caller uses the connect-es this package was built with.
//
//   import { createClient, createConnectTransport, PrincipalService } from "aegis-broker/client";
//   const transport = createConnectTransport({ baseUrl: "https://aegis.example.com", httpVersion: "1.1" });
//   const me = await createClient(PrincipalService, transport).whoAmI({}, { headers: { authorization: `Bearer ${key}` } });
export { Code, ConnectError, createClient } from "@connectrpc/connect";
export { createConnectTransport } from "@connectrpc/connect-node";
export * as agent from "../../gen/proto/aegis/agent/v1/agent_pb.js";
export { AgentService } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
export * as apikey from "../../gen/proto/aegis/apikey/v1/apikey_pb.js";
export { ApiKeyService } from "../../gen/proto/aegis/apikey/v1/apikey_pb.js";
export * as audit from "../../gen/proto/aegis/audit/v1/audit_pb.js";
export { AuditService } from "../../gen/proto/aegis/audit/v1/audit_pb.js";
export * as credential from "../../gen/proto/aegis/credential/v1/credential_pb.js";
export { CredentialService } from "../../gen/proto/aegis/credential/v1/credential_pb.js";
export * as device from "../../gen/proto/aegis/device/v1/device_pb.js";
export { DeviceAuthService } from "../../gen/proto/aegis/device/v1/device_pb.js";
export * as grant from "../../gen/proto/aegis/grant/v1/grant_pb.js";
export { GrantService } from "../../gen/proto/aegis/grant/v1/grant_pb.js";
export * as kms from "../../gen/proto/aegis/kms/v1/kms_pb.js";
export { KeyService } from "../../gen/proto/aegis/kms/v1/kms_pb.js";
export * as lease from "../../gen/proto/aegis/lease/v1/lease_pb.js";
export { LeaseService } from "../../gen/proto/aegis/lease/v1/lease_pb.js";
export * as person from "../../gen/proto/aegis/person/v1/person_pb.js";
export { PersonService } from "../../gen/proto/aegis/person/v1/person_pb.js";
export * as principal from "../../gen/proto/aegis/principal/v1/principal_pb.js";
export { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
export * as resourceserver from "../../gen/proto/aegis/resourceserver/v1/resource_server_pb.js";
export { ResourceServerService } from "../../gen/proto/aegis/resourceserver/v1/resource_server_pb.js";
export * as role from "../../gen/proto/aegis/role/v1/role_pb.js";
export { RoleService } from "../../gen/proto/aegis/role/v1/role_pb.js";
export * as token from "../../gen/proto/aegis/token/v1/token_pb.js";
export { TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
