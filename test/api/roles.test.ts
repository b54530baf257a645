// RoleService: built-in roles expand to their documented grants; custom roles
// of broker and application scopes, defined and changed only with a
// credential that could give those scopes; assigning gives every scope of a role
// under the grants' no-escalation rule (checked against the credential
// presented), all or nothing; unassigning takes away only what the
// assignment gave and voids earlier tokens; nothing crosses tenants.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentService } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { GrantService } from "../../gen/proto/aegis/grant/v1/grant_pb.js";
import { PersonService } from "../../gen/proto/aegis/person/v1/person_pb.js";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { RoleService } from "../../gen/proto/aegis/role/v1/role_pb.js";
import { TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import { services } from "../../src/app/modules.js";
import { tenantAdminScopes } from "../../src/policy/admin-scopes.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { failure, reasonOf } from "../support/errors.js";
import { type Actor, createActor, registerApi } from "../support/fixtures.js";

describe.each(databaseKinds)("roles on %s", (kind) => {
  let t: TestBroker;
  let admin: Actor;
  let api: { id: string };
  const adminScopes = tenantAdminScopes(services);

  beforeAll(async () => {
    t = await startTestBroker(kind);
    admin = await createActor(t, { scopes: adminScopes });
    api = await registerApi(t, admin.key, { identifier: `payments-${kind}`, scopes: ["repo.read", "repo.write"] });
  });
  afterAll(() => t.stop());

  const roles = (key = admin.key) => t.client(RoleService, { key });
  const person = (scopes: string[] = []) => createActor(t, { tenantId: admin.tenantId, scopes });
  const grantsOf = async (principalId: string) =>
    (await t.client(GrantService, { key: admin.key }).listGrants({ principalId })).grants.map((g) =>
      g.resourceServerId ? `${g.resourceServerId} ${g.scope}` : g.scope,
    );
  const writes = () =>
    Promise.all([
      t.db.database.prisma.roleAssignment.count(),
      t.db.database.prisma.roleAssignmentGrant.count(),
      t.db.database.prisma.grant.count(),
      t.db.database.prisma.resourceGrant.count(),
    ]);

  describe("built-in roles", () => {
    it("expands tenant_admin to the tenant admin's grants, never broker.admin", async () => {
      const { role } = await roles().getRole({ roleId: "tenant_admin" });
      expect(role).toMatchObject({ id: "tenant_admin", builtIn: true, tenantId: "" });
      expect(role?.scopes.map((s) => s.scope)).toEqual(adminScopes);
      expect(role?.scopes.map((s) => s.scope)).toContain("role.assign");
      expect(role?.scopes.map((s) => s.scope)).not.toContain("broker.admin");
    });

    it("expands auditor to audit.read and reads and lists only", async () => {
      const { role } = await roles().getRole({ roleId: "auditor" });
      const scopes = role?.scopes.map((s) => s.scope) ?? [];
      expect(scopes).toEqual(expect.arrayContaining(["audit.read", "grant.list", "person.read", "role.read"]));
      for (const scope of scopes) expect(scope.split(":")[0]).toMatch(/^audit\.read$|\.(read|list)$/);
      expect(scopes).not.toContain("grant.create");
    });

    it("expands member to its small self-service set", async () => {
      const { role } = await roles().getRole({ roleId: "member" });
      expect(role?.scopes.map((s) => s.scope)).toEqual([
        "agent.list",
        "agent.read",
        "agent.register",
        "principal.read",
        "resource_server.read",
        "token.user.create",
      ]);
    });

    it("gives a built-in role's grants on assignment and refuses to change it", async () => {
      const who = await person();
      const { givenScopes } = await roles().assignRole({ principalId: who.principalId, roleId: "auditor" });
      const { role } = await roles().getRole({ roleId: "auditor" });
      expect(givenScopes.map((s) => s.scope)).toEqual(role?.scopes.map((s) => s.scope));
      expect((await t.client(PrincipalService, { key: who.key }).whoAmI({})).scopes).toContain("audit.read");
      const error = await failure(roles().updateRole({ roleId: "auditor", addScopes: [{ scope: "grant.create" }] }));
      expect(error?.code).toBe(Code.FailedPrecondition);
      expect(reasonOf(error)).toBe("ROLE_BUILT_IN");
    });
  });

  describe("custom roles", () => {
    it("defines a role of a broker scope and an application scope, and gives both", async () => {
      const { role } = await roles().createRole({
        name: "release-manager",
        description: "ships releases",
        scopes: [{ scope: "grant.list" }, { scope: "repo.read", resourceServerId: api.id }],
      });
      expect(role?.id).toMatch(/^rol_/);
      expect(role?.scopes).toEqual([
        expect.objectContaining({ scope: "grant.list", resourceServerId: "" }),
        expect.objectContaining({ scope: "repo.read", resourceServerId: api.id }),
      ]);
      const who = await person();
      const { assignment, givenScopes } = await roles().assignRole({
        principalId: who.principalId,
        roleId: role?.id ?? "",
      });
      expect(assignment).toMatchObject({
        roleId: role?.id,
        principalId: who.principalId,
        assignedBy: admin.principalId,
      });
      expect(givenScopes).toHaveLength(2);
      expect(await grantsOf(who.principalId)).toEqual(["grant.list", `${api.id} repo.read`]);
      const event = await t.db.database.prisma.auditEvent.findFirst({
        where: { action: "role.assign", actorId: admin.principalId },
        orderBy: { seq: "desc" },
      });
      expect(event?.reason).toContain(`${api.id} repo.read`);
    });

    it("refuses a scope nobody could give, a scope outside the catalogue, and a built-in name", async () => {
      const elevated = await failure(roles().createRole({ name: "root", scopes: [{ scope: "broker.admin" }] }));
      expect(elevated?.code).toBe(Code.InvalidArgument);
      const unknown = await failure(
        roles().createRole({ name: "nope", scopes: [{ scope: "repo.delete", resourceServerId: api.id }] }),
      );
      expect(reasonOf(unknown)).toBe("INVALID_SCOPE");
      const taken = await failure(roles().createRole({ name: "member" }));
      expect(taken?.code).toBe(Code.InvalidArgument);
    });

    it("adds and removes scopes; the change applies to assigning again", async () => {
      const { role } = await roles().createRole({ name: "reader", scopes: [{ scope: "principal.read" }] });
      const who = await person();
      await roles().assignRole({ principalId: who.principalId, roleId: role?.id ?? "" });
      const { role: changed } = await roles().updateRole({
        roleId: role?.id ?? "",
        addScopes: [{ scope: "person.read" }],
        removeScopes: [{ scope: "principal.read" }],
      });
      expect(changed?.scopes.map((s) => s.scope)).toEqual(["person.read"]);
      const again = await roles().assignRole({ principalId: who.principalId, roleId: role?.id ?? "" });
      expect(again.givenScopes.map((s) => s.scope)).toEqual(["person.read"]);
    });

    it("refuses to delete an assigned role unless forced, then takes its grants away", async () => {
      const { role } = await roles().createRole({ name: "doomed", scopes: [{ scope: "agent.list" }] });
      const who = await person();
      await roles().assignRole({ principalId: who.principalId, roleId: role?.id ?? "" });
      const error = await failure(roles().deleteRole({ roleId: role?.id ?? "" }));
      expect(error?.code).toBe(Code.FailedPrecondition);
      expect(reasonOf(error)).toBe("ROLE_IN_USE");
      await roles().deleteRole({ roleId: role?.id ?? "", force: true });
      expect(await grantsOf(who.principalId)).not.toContain("agent.list");
      expect(reasonOf(await failure(roles().getRole({ roleId: role?.id ?? "" })))).toBe("ROLE_NOT_FOUND");
    });

    it("puts into a role only scopes the credential presented could give", async () => {
      const roleWrites = () => Promise.all([t.db.database.prisma.role.count(), t.db.database.prisma.roleScope.count()]);
      const { role: harmless } = await roles().createRole({ name: "harmless", scopes: [{ scope: "agent.read" }] });
      const editor = await person(["role.create", "role.update", "agent.read"]);
      const { secret: narrowed } = await t
        .client(TokenService, { key: admin.key })
        .mintUserApiToken({ scopes: ["role.create", "role.update"], label: "roles only" });
      const before = await roleWrites();
      const attempts = [
        [editor.key, { scope: "person.remove" }, "SCOPE_ESCALATION"],
        [editor.key, { scope: "repo.read", resourceServerId: api.id }, "NOT_RESOURCE_SERVER_ADMIN"],
        [narrowed, { scope: "agent.read" }, "SCOPE_ESCALATION"],
      ] as const;
      for (const [key, scope, reason] of attempts) {
        const created = await failure(roles(key).createRole({ name: "sneaky", scopes: [scope] }));
        const added = await failure(roles(key).updateRole({ roleId: harmless?.id ?? "", addScopes: [scope] }));
        for (const error of [created, added]) {
          expect([scope.scope, error?.code, reasonOf(error)]).toEqual([scope.scope, Code.PermissionDenied, reason]);
        }
      }
      expect(await roleWrites()).toEqual(before);
      // What the editor holds it may put in, and it may take out anything.
      const { role } = await roles(editor.key).updateRole({
        roleId: harmless?.id ?? "",
        addScopes: [{ scope: "agent.read" }],
      });
      expect(role?.scopes.map((s) => s.scope)).toEqual(["agent.read"]);
    });

    it("lets no role.update keep a grant an admin unassigns", async () => {
      const { role: privileged } = await roles().createRole({
        name: "privileged",
        scopes: [{ scope: "person.remove" }],
      });
      const { role: other } = await roles().createRole({ name: "other", scopes: [{ scope: "agent.read" }] });
      const insider = await person(["agent.read"]);
      await roles().assignRole({ principalId: insider.principalId, roleId: privileged?.id ?? "" });
      await roles().assignRole({ principalId: insider.principalId, roleId: other?.id ?? "" });
      // An accomplice holding role.update alone puts person.remove into the other role ...
      const accomplice = await person(["role.update"]);
      const edited = await failure(
        roles(accomplice.key).updateRole({ roleId: other?.id ?? "", addScopes: [{ scope: "person.remove" }] }),
      );
      expect([edited?.code, reasonOf(edited)]).toEqual([Code.PermissionDenied, "SCOPE_ESCALATION"]);
      // ... so unassigning the privileged role takes person.remove away.
      const { removedScopes } = await roles().unassignRole({
        principalId: insider.principalId,
        roleId: privileged?.id ?? "",
      });
      expect(removedScopes.map((s) => s.scope)).toEqual(["person.remove"]);
      expect(await grantsOf(insider.principalId)).not.toContain("person.remove");
    });

    it("lets exactly one of concurrent creations of one name win", async () => {
      const outcomes = await Promise.all(
        Array.from({ length: 8 }, () =>
          failure(roles().createRole({ name: "raced", scopes: [{ scope: "agent.read" }] })),
        ),
      );
      const failed = outcomes.filter((error) => error !== undefined);
      expect(outcomes.length - failed.length).toBe(1);
      for (const error of failed) expect(reasonOf(error)).toBe("ROLE_EXISTS");
    });

    it("lists built-in roles first, then custom roles, one page at a time", async () => {
      const seen: string[] = [];
      let pageToken = "";
      do {
        const page = await roles().listRoles({ pageSize: 2, pageToken });
        expect(page.roles.length).toBeLessThanOrEqual(2);
        seen.push(...page.roles.map((r) => r.name));
        pageToken = page.nextPageToken;
      } while (pageToken);
      expect(seen.slice(0, 3)).toEqual(["tenant_admin", "member", "auditor"]);
      expect(seen).toEqual(expect.arrayContaining(["release-manager", "reader"]));
      expect(new Set(seen).size).toBe(seen.length);
    });
  });

  describe("assigning under the no-escalation rule", () => {
    it("refuses self-assignment", async () => {
      const error = await failure(roles().assignRole({ principalId: admin.principalId, roleId: "member" }));
      expect(error?.code).toBe(Code.PermissionDenied);
      expect(reasonOf(error)).toBe("SELF_GRANT");
    });

    it("refuses a caller whose grants do not cover the role, writing nothing", async () => {
      const { role } = await roles().createRole({
        name: "mixed",
        scopes: [{ scope: "grant.list" }, { scope: "audit.read" }],
      });
      const narrow = await person(["role.assign", "grant.list"]);
      const who = await person();
      const before = await writes();
      const error = await failure(
        roles(narrow.key).assignRole({ principalId: who.principalId, roleId: role?.id ?? "" }),
      );
      expect(error?.code).toBe(Code.PermissionDenied);
      expect(reasonOf(error)).toBe("SCOPE_ESCALATION");
      expect(error?.rawMessage).toContain("audit.read");
      expect(await writes()).toEqual(before);
      const event = await t.db.database.prisma.auditEvent.findFirst({
        where: { action: "role.assign", actorId: narrow.principalId, outcome: "denied" },
        orderBy: { seq: "desc" },
      });
      expect(event?.reason).toContain("not held audit.read");
    });

    it("refuses a user API token narrower than its owner's grants", async () => {
      // The owner holds tenant_admin; the token carries role.assign only.
      const owner = await person();
      await roles().assignRole({ principalId: owner.principalId, roleId: "tenant_admin" });
      const { secret } = await t.client(TokenService, { key: owner.key }).mintUserApiToken({
        scopes: ["role.assign"],
        label: "narrow",
      });
      const who = await person();
      const before = await writes();
      const error = await failure(roles(secret).assignRole({ principalId: who.principalId, roleId: "member" }));
      expect(error?.code).toBe(Code.PermissionDenied);
      expect(reasonOf(error)).toBe("SCOPE_ESCALATION");
      expect(await writes()).toEqual(before);
    });

    it("refuses an agent holding one action an application scope without the server's admin right", async () => {
      const { role } = await roles().createRole({
        name: "repo-reader",
        scopes: [{ scope: "repo.read", resourceServerId: api.id }],
      });
      const agent = await createActor(t, { tenantId: admin.tenantId, kind: "agent", scopes: ["role.assign"] });
      const who = await person();
      const before = await writes();
      const error = await failure(
        roles(agent.key).assignRole({ principalId: who.principalId, roleId: role?.id ?? "" }),
      );
      expect(error?.code).toBe(Code.PermissionDenied);
      expect(reasonOf(error)).toBe("NOT_RESOURCE_SERVER_ADMIN");
      expect(await writes()).toEqual(before);
    });
  });

  describe("unassigning", () => {
    it("takes away what the role gave and voids earlier tokens", async () => {
      const who = await person();
      await roles().assignRole({ principalId: who.principalId, roleId: "member" });
      const minted = await t
        .client(TokenService, { key: who.key })
        .mintToken({ audience: t.broker.url, scopes: ["agent.list"] });
      const asToken = t.client(AgentService, { key: minted.accessToken });
      await asToken.listAgents({});
      t.clock.advance(1000);
      const { removedScopes } = await roles().unassignRole({ principalId: who.principalId, roleId: "member" });
      expect(removedScopes.map((s) => s.scope)).toContain("agent.list");
      expect(await grantsOf(who.principalId)).toEqual([]);
      expect((await failure(asToken.listAgents({})))?.code).toBe(Code.Unauthenticated);
      const again = await failure(roles().unassignRole({ principalId: who.principalId, roleId: "member" }));
      expect(reasonOf(again)).toBe("ROLE_ASSIGNMENT_NOT_FOUND");
    });

    it("keeps grants held before the role and those another role still gives", async () => {
      const who = await person(["agent.read"]);
      const { role } = await roles().createRole({ name: "lister", scopes: [{ scope: "agent.list" }] });
      await roles().assignRole({ principalId: who.principalId, roleId: "member" });
      await roles().assignRole({ principalId: who.principalId, roleId: role?.id ?? "" });

      const first = await roles().unassignRole({ principalId: who.principalId, roleId: "member" });
      // agent.read was held before; agent.list is still given by `lister`.
      expect(first.removedScopes.map((s) => s.scope)).not.toContain("agent.read");
      expect(first.removedScopes.map((s) => s.scope)).not.toContain("agent.list");
      expect(await grantsOf(who.principalId)).toEqual(["agent.list", "agent.read"]);

      // The record of agent.list moved to `lister`, which takes it away in turn.
      const second = await roles().unassignRole({ principalId: who.principalId, roleId: role?.id ?? "" });
      expect(second.removedScopes.map((s) => s.scope)).toEqual(["agent.list"]);
      expect(await grantsOf(who.principalId)).toEqual(["agent.read"]);
    });

    it("refuses to unassign oneself", async () => {
      const error = await failure(roles().unassignRole({ principalId: admin.principalId, roleId: "member" }));
      expect(reasonOf(error)).toBe("SELF_GRANT");
    });
  });

  describe("assignments", () => {
    it("lists assignments by principal and by role, one page at a time", async () => {
      const who = await person();
      for (const roleId of ["member", "auditor"]) await roles().assignRole({ principalId: who.principalId, roleId });
      const byPrincipal = await roles().listRoleAssignments({ principalId: who.principalId, pageSize: 1 });
      expect(byPrincipal.assignments).toHaveLength(1);
      const rest = await roles().listRoleAssignments({
        principalId: who.principalId,
        pageSize: 1,
        pageToken: byPrincipal.nextPageToken,
      });
      expect([...byPrincipal.assignments, ...rest.assignments].map((a) => a.roleId).sort()).toEqual([
        "auditor",
        "member",
      ]);
      const byRole = await roles().listRoleAssignments({ roleId: "auditor" });
      expect(byRole.assignments.map((a) => a.principalId)).toContain(who.principalId);
    });
  });

  describe("tenants", () => {
    it("keeps roles and assignments invisible to other tenants", async () => {
      const other = await createActor(t, { scopes: adminScopes });
      const { role } = await roles().createRole({ name: "private-role", scopes: [{ scope: "grant.list" }] });
      const theirs = roles(other.key);
      expect(reasonOf(await failure(theirs.getRole({ roleId: role?.id ?? "" })))).toBe("ROLE_NOT_FOUND");
      const listed = await theirs.listRoles({ pageSize: 500 });
      expect(listed.roles.map((r) => r.name)).toEqual(["tenant_admin", "member", "auditor"]);
      expect((await theirs.listRoleAssignments({})).assignments).toEqual([]);
      const outsider = await person();
      const error = await failure(theirs.assignRole({ principalId: outsider.principalId, roleId: "member" }));
      expect(reasonOf(error)).toBe("PRINCIPAL_NOT_FOUND");
      // Nor can they assign this tenant's role to their own people.
      const theirPerson = await createActor(t, { tenantId: other.tenantId });
      const cross = await failure(theirs.assignRole({ principalId: theirPerson.principalId, roleId: role?.id ?? "" }));
      expect(reasonOf(cross)).toBe("ROLE_NOT_FOUND");
    });

    it("answers another tenant's roles, people and grants like missing ones, by id and by list filter", async () => {
      const other = await createActor(t, { scopes: adminScopes });
      const { role } = await roles(other.key).createRole({ name: "theirs", scopes: [{ scope: "agent.read" }] });
      const theirPerson = await createActor(t, { tenantId: other.tenantId, scopes: ["agent.read"] });
      await roles(other.key).assignRole({ principalId: theirPerson.principalId, roleId: role?.id ?? "" });
      const mine = await person();

      const missingRole = await failure(roles().assignRole({ principalId: mine.principalId, roleId: "rol_nope" }));
      const theirRole = await failure(roles().assignRole({ principalId: mine.principalId, roleId: role?.id ?? "" }));
      expect([theirRole?.code, reasonOf(theirRole)]).toEqual([missingRole?.code, reasonOf(missingRole)]);
      const assignments = await roles().listRoleAssignments({
        roleId: role?.id ?? "",
        principalId: theirPerson.principalId,
      });
      expect(assignments.assignments).toEqual([]);
      const unassign = await failure(
        roles().unassignRole({ principalId: theirPerson.principalId, roleId: role?.id ?? "" }),
      );
      expect(unassign?.code).toBe(Code.NotFound);
      const grants = await failure(
        t.client(GrantService, { key: admin.key }).listGrants({ principalId: theirPerson.principalId }),
      );
      expect(grants?.code).toBe(Code.NotFound);
      const people = t.client(PersonService, { key: admin.key });
      const enrollment = await failure(people.issueEnrollment({ personId: theirPerson.principalId }));
      expect(reasonOf(enrollment)).toBe("PRINCIPAL_NOT_ACCESSIBLE");
      // A page token naming an id of no tenant in particular still lists only the caller's own.
      const pageToken = Buffer.from(`v1:${"a".repeat(4)}`).toString("base64url");
      const page = await people.listPeople({ pageToken, pageSize: 100 });
      for (const p of page.people) expect(p.tenantId).toBe(admin.tenantId);
    });
  });
});
