// RoleService handlers: decode, call one domain function, encode.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { RoleAssignment } from "../../gen/prisma/client.js";
import { RoleService } from "../../gen/proto/aegis/role/v1/role_pb.js";
import { auditBase, callerOf } from "../core/call.js";
import type { BrokerContext } from "../core/context.js";
import { readPage } from "../core/pagination.js";
import { assignRole, deleteRole, listRoleAssignments, unassignRole } from "./assignments.js";
import { type BuiltIns, createRole, getRole, listRoles, type RoleView, updateRole } from "./roles.js";

export { RoleService };

const scopesOf = (scopes: readonly { scope: string; resourceServerId: string }[]) =>
  scopes.map((s) => ({ scope: s.scope, resourceServerId: s.resourceServerId }));

function toRole(role: RoleView) {
  return {
    id: role.id,
    tenantId: role.tenantId,
    name: role.name,
    description: role.description,
    scopes: scopesOf(role.scopes),
    builtIn: role.builtIn,
    ...(role.createdAt ? { createTime: timestampFromDate(role.createdAt) } : {}),
    ...(role.updatedAt ? { updateTime: timestampFromDate(role.updatedAt) } : {}),
  };
}

function toAssignment(a: RoleAssignment) {
  return {
    id: a.id,
    roleId: a.roleId,
    principalId: a.principalId,
    assignedBy: a.assignedBy,
    createTime: timestampFromDate(a.createdAt),
  };
}

export function roleService(ctx: BrokerContext, builtIns: BuiltIns): ServiceImpl<typeof RoleService> {
  return {
    async createRole(req, call) {
      const role = await createRole(ctx, callerOf(call), auditBase(call), {
        name: req.name,
        description: req.description,
        scopes: scopesOf(req.scopes),
      });
      return { role: toRole(role) };
    },
    async getRole(req, call) {
      return { role: toRole(await getRole(ctx, builtIns, callerOf(call), req.roleId)) };
    },
    async listRoles(req, call) {
      const page = await listRoles(ctx, builtIns, callerOf(call), readPage(req));
      return { roles: page.items.map(toRole), nextPageToken: page.nextPageToken };
    },
    async updateRole(req, call) {
      const role = await updateRole(ctx, callerOf(call), auditBase(call), req.roleId, {
        description: req.description,
        addScopes: scopesOf(req.addScopes),
        removeScopes: scopesOf(req.removeScopes),
      });
      return { role: toRole(role) };
    },
    async deleteRole(req, call) {
      await deleteRole(ctx, builtIns, callerOf(call), auditBase(call), req.roleId, req.force);
      return {};
    },
    async assignRole(req, call) {
      const { assignment, given } = await assignRole(ctx, builtIns, callerOf(call), auditBase(call), req);
      return { assignment: toAssignment(assignment), givenScopes: scopesOf(given) };
    },
    async unassignRole(req, call) {
      const removed = await unassignRole(ctx, builtIns, callerOf(call), auditBase(call), req);
      return { removedScopes: scopesOf(removed) };
    },
    async listRoleAssignments(req, call) {
      const page = await listRoleAssignments(ctx, callerOf(call), req, readPage(req));
      return { assignments: page.items.map(toAssignment), nextPageToken: page.nextPageToken };
    },
  };
}
