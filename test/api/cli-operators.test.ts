// The operator and people commands (`aegis resource-servers|people|grants`)
// as a tenant admin runs them: a real `aegis` process against a real broker,
// authenticated with an API key from the environment or a key file.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { runAegis } from "../support/cli.js";
import { type Actor, createActor } from "../support/fixtures.js";

const adminScopes = [
  "resource_server.create",
  "resource_server.read",
  "grant.create",
  "grant.list",
  "grant.delete",
  "person.create",
  "person.read",
  "person.list",
  "person.suspend",
  "person.reactivate",
  "person.remove",
  "person.enrollment.issue",
  "role.create",
  "role.read",
  "role.assign",
  "role.unassign",
  "role.delete",
  "agent.read",
];

describe("aegis operator commands", () => {
  let t: TestBroker;
  let admin: Actor;
  let configDir: string;

  /** Runs `aegis …args` as `key`'s principal (the admin's unless given); resolves once it has exited. */
  async function aegis(args: string[], key = admin.key) {
    const cli = runAegis([...args, "--server", t.broker.url], { AEGIS_API_KEY: key, AEGIS_CONFIG_DIR: configDir });
    const code = await cli.closed;
    return { code, stdout: cli.stdout(), stderr: cli.stderr() };
  }

  beforeAll(async () => {
    t = await startTestBroker("pglite");
    admin = await createActor(t, { scopes: adminScopes, name: "CLI admin" });
    configDir = mkdtempSync(path.join(tmpdir(), "aegis-cli-ops-"));
  });
  afterAll(() => t.stop());

  it("creates a resource server, lists it, adds a scope and deprecates it", async () => {
    const created = await aegis([
      "resource-servers",
      "create",
      "payments-cli",
      "--name",
      "Payments API",
      "--scope",
      "repo.read=read repositories",
      "--scope",
      "model:invoke",
      "--max-lifetime",
      "900",
      "--json",
    ]);
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);
    const server = JSON.parse(created.stdout) as { id: string; identifier: string; scopes: { name: string }[] };
    expect(server.identifier).toBe("payments-cli");
    expect(server.scopes.map((s) => s.name)).toEqual(["model:invoke", "repo.read"]);

    const listed = await aegis(["resource-servers", "list"]);
    expect(listed.code).toBe(0);
    expect(listed.stdout.split("\n")[0]).toMatch(/^ID\s+IDENTIFIER\s+NAME\s+SCOPES\s+DPOP$/);
    expect(listed.stdout).toMatch(new RegExp(`${server.id}\\s+payments-cli\\s+Payments API\\s+2`));

    const added = await aegis(["resource-servers", "scopes", "add", server.id, "repo.write=push to repositories"]);
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/repo\.write\s+active\s+push to repositories/);

    const deprecated = await aegis(["resource-servers", "scopes", "deprecate", server.id, "repo.write"]);
    expect(deprecated.code).toBe(0);
    expect(deprecated.stdout).toMatch(/repo\.write\s+deprecated/);
    expect(deprecated.stdout).toMatch(/repo\.read\s+active/);

    const restored = await aegis(["resource-servers", "scopes", "restore", server.id, "repo.write", "--json"]);
    const scopes = (JSON.parse(restored.stdout) as { scopes: { name: string; deprecated?: boolean }[] }).scopes;
    expect(scopes.find((s) => s.name === "repo.write")?.deprecated).toBeUndefined();

    const got = await aegis(["resource-servers", "get", server.id]);
    expect(got.code).toBe(0);
    expect(got.stdout).toMatch(/^id:\s+rsv_/);
    expect(got.stdout).toContain("max lifetime:");
    expect(got.stdout).toContain("900s");
  });

  it("follows next_page_token with --all, and says where the next page starts without it", async () => {
    for (const n of [1, 2, 3]) {
      expect((await aegis(["resource-servers", "create", `paged-${n}`, "--name", `Paged ${n}`])).code).toBe(0);
    }
    const first = await aegis(["resource-servers", "list", "--page-size", "2"]);
    expect(first.code).toBe(0);
    expect(first.stdout.trim().split("\n")).toHaveLength(3);
    const token = /--page-token (\S+)/.exec(first.stderr)?.[1];
    expect(token).toBeTruthy();
    const next = await aegis(["resource-servers", "list", "--page-size", "2", "--page-token", token ?? ""]);
    expect(next.code).toBe(0);
    const all = await aegis(["resource-servers", "list", "--page-size", "2", "--all", "--json"]);
    const servers = (JSON.parse(all.stdout) as { resourceServers: unknown[] }).resourceServers;
    expect(servers.length).toBeGreaterThanOrEqual(4);
    expect(all.stderr).toBe("");
  });

  it("adds a person, prints the one-time enrollment code once, and suspends them", async () => {
    const added = await aegis(["people", "add", "--name", "Ada Lovelace", "--username", "ada-cli"]);
    expect(added.stderr).toBe("");
    expect(added.code).toBe(0);
    const code = /^ {2}(aegis_en_\S+)$/m.exec(added.stdout)?.[1];
    expect(code).toBeTruthy();
    expect(added.stdout).toMatch(/Enrollment link: http:\/\/\S+/);
    const id = /^id:\s+(prn_\S+)/m.exec(added.stdout)?.[1] ?? "";
    expect(id).toMatch(/^prn_/);
    // The code is shown once: reading the person back never shows it.
    const got = await aegis(["people", "get", id, "--json"]);
    expect(got.stdout).not.toContain(code);
    expect(JSON.parse(got.stdout)).toMatchObject({ id, displayName: "Ada Lovelace", status: "PERSON_STATUS_ACTIVE" });

    const suspended = await aegis(["people", "suspend", id]);
    expect(suspended.code).toBe(0);
    expect(suspended.stdout).toMatch(/status:\s+suspended/);
    const listed = await aegis(["people", "list", "--status", "suspended"]);
    expect(listed.stdout).toMatch(new RegExp(`${id}\\s+Ada Lovelace\\s+ada-cli\\s+suspended\\s+no`));
    expect((await aegis(["people", "reactivate", id])).stdout).toMatch(/status:\s+active/);
    const reenrolled = await aegis(["people", "enroll", id, "--json"]);
    const enrollment = (JSON.parse(reenrolled.stdout) as { enrollment: { code: string } }).enrollment;
    expect(enrollment.code).toMatch(/^aegis_en_/);
    expect(enrollment.code).not.toBe(code);
  });

  it("adds a grant of an API's scope, lists it and removes it", async () => {
    const server = JSON.parse(
      (await aegis(["resource-servers", "create", "grants-cli", "--name", "Grants", "--scope", "repo.read", "--json"]))
        .stdout,
    ) as { id: string };
    const person = await createActor(t, { tenantId: admin.tenantId, name: "Grantee" });
    const added = await aegis(["grants", "add", person.principalId, "repo.read", "--resource-server", server.id]);
    expect(added.stderr).toBe("");
    expect(added.code).toBe(0);
    const grantId = /^id:\s+(grt_\S+)/m.exec(added.stdout)?.[1] ?? "";
    expect(grantId).toMatch(/^grt_/);

    const listed = await aegis(["grants", "list", person.principalId]);
    expect(listed.stdout).toMatch(new RegExp(`${grantId}\\s+repo\\.read\\s+${server.id}`));
    const json = JSON.parse((await aegis(["grants", "list", person.principalId, "--json"])).stdout) as {
      grants: { id: string }[];
    };
    expect(json.grants.map((g) => g.id)).toEqual([grantId]);

    const removed = await aegis(["grants", "remove", grantId]);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toBe(`removed ${grantId}\n`);
    expect((await aegis(["grants", "list", person.principalId])).stdout).toBe("(none)\n");
  });

  it("refuses to delete a resource server whose scopes are granted, and deletes it with --force", async () => {
    const server = JSON.parse(
      (await aegis(["resource-servers", "create", "delete-cli", "--name", "Doomed", "--scope", "a.b", "--json"]))
        .stdout,
    ) as { id: string };
    const holder = await createActor(t, { tenantId: admin.tenantId, name: "Holder" });
    expect((await aegis(["grants", "add", holder.principalId, "a.b", "--resource-server", server.id])).code).toBe(0);
    const refused = await aegis(["resource-servers", "delete", server.id]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^aegis: the broker answered \[failed_precondition\] .+ \(reason: [A-Z_]+\)\n$/);
    const forced = await aegis(["resource-servers", "delete", server.id, "--force"]);
    expect(forced.code).toBe(0);
    expect(forced.stdout).toBe(`deleted ${server.id}\n`);
    expect((await aegis(["grants", "list", holder.principalId])).stdout).toBe("(none)\n");
    expect((await aegis(["resource-servers", "get", server.id])).code).toBe(3);
  });

  it("reads the API key from --key-file", async () => {
    const file = path.join(configDir, "admin.key");
    writeFileSync(file, `${admin.key}\n`, { mode: 0o600 });
    const result = await aegis(["resource-servers", "get", "broker", "--key-file", file], "");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/identifier:\s+\S+/);
  });

  it("a refusal prints the code, the message and the reason in one line and exits non-zero", async () => {
    const stranger = await createActor(t, { tenantId: admin.tenantId, name: "No rights" });
    const refused = await aegis(["resource-servers", "create", "nope", "--name", "Nope"], stranger.key);
    expect(refused.code).toBe(4);
    expect(refused.stdout).toBe("");
    expect(refused.stderr).toMatch(/^aegis: the broker answered \[permission_denied\] .+ \(reason: [A-Z_]+\)\n$/);

    const missing = await aegis(["people", "get", "prn_doesnotexist"]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/^aegis: the broker answered \[not_found\] .+ \(reason: [A-Z_]+\)\n$/);

    const bad = await aegis(["resource-servers", "create", "has space", "--name", "Bad"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^aegis: the broker answered \[invalid_argument\] .+\n$/);
  });

  it("without an API key and without a login, says how to sign in (exit 2)", async () => {
    const result = await aegis(["people", "list"], "");
    expect(result.code).toBe(2);
    expect(result.stderr).toBe("aegis: not signed in: run aegis login --server URL\n");
  });

  it("defines a role, assigns it, shows what it gave, and takes it back", async () => {
    const other = await createActor(t, { tenantId: admin.tenantId, kind: "agent", name: "role holder" });
    const listed = await aegis(["roles", "list", "--all", "--json"]);
    expect(listed.code).toBe(0);
    const names = (JSON.parse(listed.stdout) as { roles: { name: string }[] }).roles.map((r) => r.name);
    expect(names).toEqual(expect.arrayContaining(["tenant_admin", "member", "auditor"]));
    const created = await aegis([
      "roles",
      "create",
      "readers",
      "--description",
      "reads agents",
      "--scope",
      "agent.read",
      "--json",
    ]);
    expect(created.code).toBe(0);
    const roleId = (JSON.parse(created.stdout) as { id: string }).id;
    const assigned = await aegis(["roles", "assign", other.principalId, roleId]);
    expect(assigned.code).toBe(0);
    expect(assigned.stdout).toMatch(/given:?\s+agent\.read/);
    const grants = await aegis(["grants", "list", other.principalId]);
    expect(grants.stdout).toContain("agent.read");
    expect((await aegis(["roles", "unassign", other.principalId, roleId])).code).toBe(0);
    expect((await aegis(["grants", "list", other.principalId])).stdout).not.toContain("agent.read");
    const self = await aegis(["roles", "assign", admin.principalId, roleId]);
    expect(self.code).toBe(4);
    expect(self.stderr).toContain("SELF_GRANT");
    expect((await aegis(["roles", "delete", roleId])).code).toBe(0);
  });
});
