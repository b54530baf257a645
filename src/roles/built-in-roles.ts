// The built-in tenant roles, defined here and nowhere else. Each expands to
// broker scopes derived from the actions the protos declare, so a new RPC
// reaches `tenant_admin` (and, if it only reads, `auditor`) without anyone
// listing it:
//
// - `tenant_admin`: every public action authorized by grant, on every
//   target (`tenantAdminScopes`, what CreateTenant's first admin holds).
//   Never `broker.admin` nor the private actions it unlocks.
// - `auditor`: read only: `audit.read` and every `*.read` / `*.list` action
//   of the tenant admin's, on every target (credential and lease metadata
//   included; sealed material is unreadable to the broker anyway).
// - `member`: self-service for a person who runs agents: register agents
//   and see the tenant's agents, principals and APIs, and mint user API
//   tokens (always narrowed to what the member holds). Deliberately
//   without credential or lease rights (target-scoped: an admin gives them
//   per provider/app/account), without `account.password.set` (it would let
//   one member set another's password) and without key or grant
//   administration. `WhoAmI`, `MintToken` and device approval need no
//   grant and so are not listed.
import type { DescService } from "@bufbuild/protobuf";
import { tenantAdminScopes } from "../policy/admin-scopes.js";
import { parseScope } from "../protocol/scope.js";

export const builtInRoleNames = ["tenant_admin", "member", "auditor"] as const;
export type BuiltInRoleName = (typeof builtInRoleNames)[number];

export interface BuiltInRole {
  readonly name: BuiltInRoleName;
  readonly description: string;
  /** Canonical broker scopes, sorted. */
  readonly scopes: readonly string[];
}

const memberActions = [
  "agent.register",
  "agent.read",
  "agent.list",
  "principal.read",
  "resource_server.read",
  "token.user.create",
] as const;

const readsOnly = (scope: string) => {
  const { action } = parseScope(scope, { wildcards: true });
  return action === "audit.read" || /\.(read|list)$/.test(action);
};

/** The built-in roles of every tenant, from the broker's services; fails at start-up if `member` names an unknown action. */
export function builtInRoles(services: readonly DescService[]): ReadonlyMap<BuiltInRoleName, BuiltInRole> {
  const admin = tenantAdminScopes(services);
  const unknown = memberActions.filter((action) => !admin.includes(action));
  if (unknown.length > 0) throw new Error(`member role names actions no tenant admin holds: ${unknown.join(", ")}`);
  const roles: BuiltInRole[] = [
    { name: "tenant_admin", description: "Administers the tenant: every public action of the broker.", scopes: admin },
    {
      name: "member",
      description:
        "Runs agents: registers them, reads the tenant's agents, principals and APIs, mints user API tokens.",
      scopes: [...memberActions].sort(),
    },
    {
      name: "auditor",
      description: "Reads the audit trail and every read or list of the tenant; changes nothing.",
      scopes: admin.filter(readsOnly),
    },
  ];
  return new Map(roles.map((r) => [r.name, Object.freeze({ ...r, scopes: Object.freeze([...r.scopes]) })]));
}
