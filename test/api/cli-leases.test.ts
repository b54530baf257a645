// `aegis leases`, `aegis credential list|get|delete`, `aegis tokens
// user-token`, `aegis signing-keys` and `aegis audit tail` as a person and an
// operator run them: real `aegis` processes against a real broker. Leases
// need DPoP, so the person signs in with `aegis login` (the device flow,
// approved over the API as the verification page would) and the lease
// commands run on that session; the redeemed credential comes out sealed and
// only `aegis credential open` with the person's private key opens it.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentService, KeyUse } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { DeviceAuthService } from "../../gen/proto/aegis/device/v1/device_pb.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { runAegis, waitFor } from "../support/cli.js";
import { type Actor, createActor } from "../support/fixtures.js";

const leaseScopes = ["create", "redeem", "revoke", "read"].map((verb) => `credential.lease.${verb}:provider:gcp`);

describe("aegis leases, credential list/get/delete, tokens user-token, signing-keys, audit tail", () => {
  let t: TestBroker;
  let person: Actor;
  let dir: string;
  let configDir: string;
  let clientId: string;

  /** Runs aegis with `key` (none: the stored login) and `input` on stdin. */
  async function aegis(args: string[], key: string | undefined, input = "") {
    const cli = runAegis(key ? [...args, "--server", t.broker.url] : args, {
      AEGIS_API_KEY: key ?? "",
      AEGIS_CONFIG_DIR: configDir,
      BROWSER: "none",
    });
    cli.child.stdin?.end(input);
    const code = await cli.closed;
    return { code, stdout: cli.stdout(), stderr: cli.stderr() };
  }

  beforeAll(async () => {
    t = await startTestBroker("pglite", { AEGIS_DEVICE_POLL_INTERVAL_S: "1" });
    person = await createActor(t, {
      name: "Lease Person",
      scopes: [
        "principal.whoami",
        "agent.key.add",
        "agent.key.list",
        "credential.create:provider:gcp",
        "credential.read:provider:gcp",
        "credential.delete:provider:gcp",
        "token.user.create",
        "audit.read",
        "oauth_client.create",
        ...leaseScopes,
      ],
    });
    dir = mkdtempSync(path.join(tmpdir(), "aegis-cli-leases-"));
    configDir = path.join(dir, "config");
    // The tenant's own public client for `aegis login` (device flow).
    const { client } = await t
      .client(DeviceAuthService, { key: person.key })
      .createOAuthClient({ name: "Aegis CLI", allowedScopes: leaseScopes });
    clientId = client?.id ?? "";
  });
  afterAll(() => t.stop());

  it("leases a credential on the login session, redeems it sealed, opens it with the private key, revokes it", async () => {
    const keyFile = path.join(dir, "me.jwk");
    const generated = await aegis(["key", "generate", "--out", keyFile], undefined);
    expect(generated.code).toBe(0);
    await t
      .client(AgentService, { key: person.key })
      .addAgentKey({ agentId: person.principalId, use: KeyUse.ENCRYPTION, jwkJson: generated.stdout });
    const secret = `lease-secret-${crypto.randomUUID()}`;
    const put = await aegis(
      ["credential", "put", "--provider", "gcp", "--app", "cli", "--account", "me", "--to-self"],
      person.key,
      `${secret}\n`,
    );
    expect(put.stderr).toBe("");
    const credentialId = /^(crd_\S+)/.exec(put.stdout)?.[1] ?? "";
    expect(credentialId).not.toBe("");

    // Sign in: the CLI shows a code; the person approves it (as on the page).
    const login = runAegis(
      ["login", "--server", t.broker.url, "--client-id", clientId, "--scope", leaseScopes.join(" ")],
      {
        AEGIS_CONFIG_DIR: configDir,
        BROWSER: "none",
      },
    );
    await waitFor(() => /enter the code (\S+)/.test(login.stdout()));
    const userCode = /enter the code (\S+)/.exec(login.stdout())?.[1] ?? "";
    await t.client(DeviceAuthService, { key: person.key }).approveDeviceAuthorization({ userCode });
    expect(await login.closed).toBe(0);

    // An API key alone cannot prove possession: lease actions need the DPoP-bound session.
    const bearer = await aegis(
      ["leases", "create", "--provider", "gcp", "--app", "cli", "--account", "me"],
      person.key,
    );
    expect(bearer.code).toBe(4);
    expect(bearer.stderr).toMatch(/needs a DPoP-bound token .*\(reason: DPOP_REQUIRED\)/);

    const created = await aegis(
      ["leases", "create", "--provider", "gcp", "--app", "cli", "--account", "me", "--uses", "2", "--lifetime", "300"],
      undefined,
    );
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^target:\s+gcp\/cli\/me$/m);
    expect(created.stdout).toMatch(/^uses left:\s+2 of 2$/m);
    const leaseId = /^id:\s+(lse_\S+)$/m.exec(created.stdout)?.[1] ?? "";

    const redeemed = await aegis(["leases", "redeem", leaseId], undefined);
    expect(redeemed.code).toBe(0);
    expect(redeemed.stdout).not.toContain(secret);
    const opened = await aegis(["credential", "open", "--key", keyFile], undefined, redeemed.stdout);
    expect(opened.stdout).toBe(secret);

    const shown = await aegis(["leases", "get", leaseId], person.key);
    expect(shown.stdout).toMatch(/^uses left:\s+1 of 2$/m);
    const listed = await aegis(["leases", "list", "--state", "active", "--all"], person.key);
    expect(listed.stdout).toMatch(new RegExp(`^${leaseId}\\s+gcp/cli/me\\s+\\S+\\s+active\\s+1\\s`, "m"));

    const revoked = await aegis(["leases", "revoke", leaseId, "--json"], undefined);
    expect(JSON.parse(revoked.stdout)).toMatchObject({ id: leaseId, state: "LEASE_STATE_REVOKED" });
    const again = await aegis(["leases", "redeem", leaseId], undefined);
    expect(again.code).not.toBe(0);
    expect(again.stdout).toBe("");
    expect((await aegis(["leases", "list", "--state", "active", "--all"], person.key)).stdout).toBe("(none)\n");

    // What the broker holds of the credential: metadata, never the secret; then it goes.
    const list = await aegis(["credential", "list", "--provider", "gcp", "--all"], person.key);
    expect(list.stdout).toMatch(new RegExp(`^${credentialId}\\s+gcp/cli/me\\s+\\s*1\\s`, "m"));
    const got = await aegis(["credential", "get", credentialId, "--json"], person.key);
    expect(JSON.parse(got.stdout)).toMatchObject({ id: credentialId, version: 1, target: { provider: "gcp" } });
    expect(got.stdout).not.toContain(secret);
    expect((await aegis(["credential", "delete", credentialId], person.key)).stdout).toBe("deleted\n");
    expect((await aegis(["credential", "get", credentialId], person.key)).code).toBe(3);
  }, 180_000);

  it("makes a user API token narrowed to its scopes, printed alone, that works as an API key", async () => {
    const made = await aegis(
      [
        "tokens",
        "user-token",
        "--scope",
        "credential.read:provider:gcp:app:cli:account:me",
        "--ttl",
        "600",
        "--label",
        "ci",
      ],
      person.key,
    );
    expect(made.stderr).toBe("");
    const token = made.stdout.trim();
    expect(made.stdout).toBe(`${token}\n`);
    expect((await aegis(["credential", "list"], token)).code).toBe(0);
    const beyond = await aegis(["audit", "list"], token);
    expect(beyond.code).toBe(4);
    expect(beyond.stderr).toMatch(/permission_denied/);
  }, 60_000);

  it("lists and rotates the signing keys (operators), refused to a tenant member", async () => {
    const before = await aegis(["signing-keys", "list", "--json"], t.adminKey);
    const states = (JSON.parse(before.stdout) as { keys: { kid: string; state: string }[] }).keys;
    const active = states.find((k) => k.state === "SIGNING_KEY_STATE_ACTIVE")?.kid ?? "";
    const next = states.find((k) => k.state === "SIGNING_KEY_STATE_NEXT")?.kid ?? "";
    const rotated = await aegis(["signing-keys", "rotate"], t.adminKey);
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toMatch(new RegExp(`^${next}\\s+active\\s`, "m"));
    expect(rotated.stdout).toMatch(new RegExp(`^${active}\\s+retiring\\s`, "m"));
    expect((await aegis(["signing-keys", "list"], person.key)).code).toBe(4);
  }, 60_000);

  it("tails the audit trail: replays after --after, follows live events, ends on Ctrl-C", async () => {
    const tail = runAegis(
      ["audit", "tail", "--after", "1", "--action", "credential.lease.redeem", "--json", "--server", t.broker.url],
      { AEGIS_API_KEY: person.key, AEGIS_CONFIG_DIR: configDir },
    );
    // Replayed: the redemptions of the first test (one allowed, one refused).
    await waitFor(() => tail.stdout().split("\n").filter(Boolean).length >= 2);
    const replayed = tail
      .stdout()
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { outcome: string });
    expect(replayed.map((e) => e.outcome)).toEqual(["OUTCOME_SUCCESS", "OUTCOME_DENIED"]);
    // Live: a refused redemption now shows up without asking again.
    await aegis(["leases", "redeem", "lse_missing"], undefined);
    await waitFor(() => tail.stdout().split("\n").filter(Boolean).length >= 3);
    expect(tail.stdout()).toContain('"target":"lse_missing"');
    tail.child.kill("SIGINT");
    expect(await tail.closed).toBe(0);
    expect(tail.stderr()).toBe("");
  }, 60_000);

  it("keeps one login profile per server: lists them, switches the default, logs out of one", async () => {
    const file = path.join(configDir, "credentials.json");
    const saved = JSON.parse(readFileSync(file, "utf8")) as { default: string; profiles: Record<string, object> };
    expect(saved.default).toBe(t.broker.url);
    const listed = await aegis(["profiles", "list"], undefined);
    expect(listed.stdout).toMatch(new RegExp(`^\\*\\s+${t.broker.url}\\s+${clientId}\\s+\\d{4}-`, "m"));

    // A second server's profile (unreachable here): made the default, then left again.
    const other = "http://127.0.0.1:1";
    const profile = saved.profiles[t.broker.url] ?? {};
    writeFileSync(
      file,
      JSON.stringify({ ...saved, profiles: { ...saved.profiles, [other]: { ...profile, server: other } } }),
    );
    expect((await aegis(["profiles", "use", other], undefined)).stdout).toBe(`${other} is the default now.\n`);
    expect((await aegis(["profiles", "list"], undefined)).stdout).toMatch(new RegExp(`^\\*\\s+${other}\\s`, "m"));
    const here = await aegis(["whoami", "--server", t.broker.url], undefined);
    expect(here.stdout).toContain(`Lease Person (${person.principalId})`);
    const away = await aegis(["leases", "list"], undefined);
    expect(away.code).toBe(5);
    expect(away.stderr).toContain(`could not reach ${other}`);
    expect((await aegis(["logout", "--server", other], undefined)).stdout).toBe(`Logged out of ${other}.\n`);
    const after = JSON.parse(readFileSync(file, "utf8")) as { default: string; profiles: Record<string, object> };
    expect(after).toMatchObject({ default: t.broker.url });
    expect(Object.keys(after.profiles)).toEqual([t.broker.url]);

    const unknown = await aegis(["whoami", "--server", "http://127.0.0.1:2"], undefined);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain(
      "not signed in to http://127.0.0.1:2: run aegis login --server http://127.0.0.1:2",
    );
  }, 90_000);
});
