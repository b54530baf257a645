// `aegis agents` and `aegis api-keys` as a tenant admin runs them: a real
// `aegis` process against a real broker. A new key's secret is printed once
// and works; a listing never shows it.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { exportJWK, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { runAegis } from "../support/cli.js";
import { type Actor, createActor } from "../support/fixtures.js";

describe("aegis agents and api-keys", () => {
  let t: TestBroker;
  let admin: Actor;
  let configDir: string;

  async function aegis(args: string[], key = admin.key) {
    const cli = runAegis([...args, "--server", t.broker.url], { AEGIS_API_KEY: key, AEGIS_CONFIG_DIR: configDir });
    const code = await cli.closed;
    return { code, stdout: cli.stdout(), stderr: cli.stderr() };
  }

  beforeAll(async () => {
    t = await startTestBroker("pglite");
    admin = await createActor(t, {
      name: "CLI admin",
      scopes: [
        ...["register", "read", "list", "suspend", "reactivate", "revoke"].map((verb) => `agent.${verb}`),
        ...["create", "list", "rotate", "revoke"].map((verb) => `apikey.${verb}`),
        ...["add", "list", "revoke"].map((verb) => `agent.key.${verb}`),
        "principal.whoami",
      ],
    });
    configDir = mkdtempSync(path.join(tmpdir(), "aegis-cli-agents-"));
  });
  afterAll(() => t.stop());

  it("registers an agent, lists, suspends, reactivates and revokes it", async () => {
    const registered = await aegis(["agents", "register", "--name", "deploy bot", "--scope", "principal.whoami"]);
    expect(registered.stderr).toBe("");
    expect(registered.code).toBe(0);
    const id = /^id:\s+(prn_\S+)/m.exec(registered.stdout)?.[1] ?? "";
    expect(registered.stdout).toMatch(/scopes:\s+principal\.whoami/);

    expect((await aegis(["agents", "list"])).stdout).toMatch(
      new RegExp(`${id}\\s+deploy bot\\s+${admin.principalId}\\s+active`),
    );
    expect((await aegis(["agents", "suspend", id])).stdout).toMatch(/status:\s+suspended/);
    expect((await aegis(["agents", "list", "--status", "suspended", "--json"])).stdout).toContain(id);
    expect((await aegis(["agents", "reactivate", id])).stdout).toMatch(/status:\s+active/);
    const got = JSON.parse((await aegis(["agents", "get", id, "--json"])).stdout) as { status: string };
    expect(got.status).toBe("AGENT_STATUS_ACTIVE");
    expect((await aegis(["agents", "revoke", id])).stdout).toMatch(/status:\s+revoked/);
    const again = await aegis(["agents", "reactivate", id]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/^aegis: the broker answered \[\w+\] .+ \(reason: [A-Z_]+\)\n$/);
  });

  it("adds an agent's public keys from a file or stdin, refuses a private one, lists and revokes them", async () => {
    const agent = JSON.parse((await aegis(["agents", "register", "--name", "keyed by JWK", "--json"])).stdout) as {
      id: string;
    };
    const keyFile = path.join(configDir, "bot.jwk");
    const generated = runAegis(["key", "generate", "--out", keyFile], { AEGIS_CONFIG_DIR: configDir });
    expect(await generated.closed).toBe(0);
    const publicFile = path.join(configDir, "bot.public.jwk");
    writeFileSync(publicFile, generated.stdout());

    const added = await aegis(["agents", "keys", "add", agent.id, "--use", "encryption", "--jwk-file", publicFile]);
    expect(added.stderr).toBe("");
    expect(added.stdout).toMatch(/^use:\s+encryption$/m);
    expect(added.stdout).toMatch(/^status:\s+active$/m);
    const keyId = /^id:\s+(\S+)$/m.exec(added.stdout)?.[1] ?? "";

    // A signing key on stdin.
    const { publicKey } = await generateKeyPair("ES256");
    const signing = runAegis(["agents", "keys", "add", agent.id, "--use", "signing", "--server", t.broker.url], {
      AEGIS_API_KEY: admin.key,
      AEGIS_CONFIG_DIR: configDir,
    });
    signing.child.stdin?.end(JSON.stringify(await exportJWK(publicKey)));
    expect(await signing.closed).toBe(0);
    expect(signing.stdout()).toMatch(/^algorithm:\s+ES256$/m);

    // The private JWK never leaves this machine.
    const refused = await aegis(["agents", "keys", "add", agent.id, "--use", "encryption", "--jwk-file", keyFile]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^aegis: that is a private key/);

    const listed = await aegis(["agents", "keys", "list", agent.id]);
    expect(listed.stdout).toMatch(new RegExp(`^${keyId}\\s+encryption\\s+\\S+\\s+active`, "m"));
    expect(listed.stdout.split("\n").filter((line) => /\sactive\s/.test(line))).toHaveLength(2);
    expect((await aegis(["agents", "keys", "revoke", keyId])).stdout).toMatch(/^status:\s+revoked$/m);
    const json = JSON.parse((await aegis(["agents", "keys", "list", agent.id, "--json"])).stdout) as {
      keys: { id: string; status: string }[];
    };
    expect(json.keys.find((k) => k.id === keyId)?.status).toBe("KEY_STATUS_REVOKED");
  }, 90_000);

  it("creates an API key whose secret is printed once and works, lists, rotates and revokes it", async () => {
    const agent = JSON.parse(
      (await aegis(["agents", "register", "--name", "keyed bot", "--scope", "principal.whoami", "--json"])).stdout,
    ) as { id: string };
    const created = await aegis(["api-keys", "create", agent.id, "--label", "ci", "--json"]);
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);
    const { key, secret } = JSON.parse(created.stdout) as { key: { id: string }; secret: string };
    expect(secret.length).toBeGreaterThan(20);
    // The secret acts as the agent.
    const me = await aegis(["agents", "get", agent.id], secret);
    expect(me.code).toBe(4); // the agent may only say who it is, not read agents

    const listed = await aegis(["api-keys", "list", agent.id]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`${key.id}\\s+ci\\s+`));
    expect(listed.stdout).not.toContain(secret);

    const rotated = await aegis(["api-keys", "rotate", key.id, "--grace", "60"]);
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toContain("API key (shown only now; store it safely):");
    expect(rotated.stdout).toContain(`The old key ${key.id} works until `);
    const fresh = /^ {2}(\S+)$/m.exec(rotated.stdout)?.[1] ?? "";
    expect(fresh).not.toBe(secret);
    const newId = /^id:\s+(\S+)/m.exec(rotated.stdout)?.[1] ?? "";

    const revoked = await aegis(["api-keys", "revoke", newId]);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toMatch(/revoked:\s+\d{4}-/);
    expect((await aegis(["agents", "list"], fresh)).code).toBe(4);
  });
});
