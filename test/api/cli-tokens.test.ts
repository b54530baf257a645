// `aegis tokens`, `aegis audit` and `aegis tenants` as an agent, a tenant
// admin and an operator run them: a real `aegis` process against a real
// broker. Tokens to introspect or revoke go in on stdin.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { runAegis } from "../support/cli.js";
import { type Actor, createActor, registerApi } from "../support/fixtures.js";

describe("aegis tokens, audit and tenants", () => {
  let t: TestBroker;
  let admin: Actor;
  let agent: Actor;
  let configDir: string;

  async function aegis(args: string[], key: string, input = "") {
    const cli = runAegis([...args, "--server", t.broker.url], { AEGIS_API_KEY: key, AEGIS_CONFIG_DIR: configDir });
    cli.child.stdin?.end(input);
    const code = await cli.closed;
    return { code, stdout: cli.stdout(), stderr: cli.stderr() };
  }

  beforeAll(async () => {
    t = await startTestBroker("pglite");
    admin = await createActor(t, {
      name: "CLI admin",
      scopes: ["resource_server.create", "grant.create", "introspect.token", "token.revoke"],
    });
    agent = await createActor(t, { tenantId: admin.tenantId, kind: "agent", name: "CLI bot" });
    await registerApi(t, admin.key, {
      identifier: "payments-cli",
      scopes: ["repo.read"],
      grants: { [agent.principalId]: ["repo.read"] },
    });
    configDir = mkdtempSync(path.join(tmpdir(), "aegis-cli-tokens-"));
  });
  afterAll(() => t.stop());

  it("mints a token (printed alone), introspects it from stdin, revokes it by jti", async () => {
    const minted = await aegis(
      ["tokens", "mint", "--audience", "payments-cli", "--scope", "repo.read", "--lifetime", "120"],
      agent.key,
    );
    expect(minted.stderr).toBe("");
    expect(minted.code).toBe(0);
    const token = minted.stdout.trim();
    expect(token.split(".")).toHaveLength(3);

    const active = await aegis(["tokens", "introspect"], admin.key, `${token}\n`);
    expect(active.code).toBe(0);
    expect(active.stdout).toMatch(/^active:\s+yes$/m);
    expect(active.stdout).toMatch(/^audience:\s+payments-cli$/m);
    const jti = /^jti:\s+(\S+)$/m.exec(active.stdout)?.[1] ?? "";

    expect((await aegis(["tokens", "revoke", "--jti", jti], admin.key)).stdout).toBe("revoked\n");
    const inactive = await aegis(["tokens", "introspect", "--json"], admin.key, token);
    expect(JSON.parse(inactive.stdout)).not.toHaveProperty("active");

    const refused = await aegis(["tokens", "mint", "--audience", "payments-cli", "--scope", "repo.write"], agent.key);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/^aegis: the broker answered \[\w+\] .+ \(reason: [A-Z_]+\)\n$/);
  });

  it("creates a tenant with its admin's one-time code, lists tenants, lists and verifies the audit trail", async () => {
    const created = await aegis(["tenants", "create", "acme-cli", "--admin-email", "ops@acme.example"], t.adminKey);
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^ {2}aegis_en_\S+$/m);
    expect((await aegis(["tenants", "list", "--all"], t.adminKey)).stdout).toMatch(/^ten_\S+\s+acme-cli\s+acme-cli/m);

    const events = await aegis(["audit", "list", "--action", "tenant.create", "--all"], t.adminKey);
    expect(events.code).toBe(0);
    expect(events.stdout).toMatch(/tenant\.create\s+\S+\s+success/);
    const verified = await aegis(["audit", "verify"], t.adminKey);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/^intact: \d+ events checked\n$/);
  });
});
