// `aegis key` and `aegis credential` as a person and an agent run them: the
// secret goes in on stdin, is sealed on the client, and only the holder of
// the private key file gets it back out.
import { spawn } from "node:child_process";
import { mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentService, KeyUse } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { type Actor, createActor } from "../support/fixtures.js";

const tsx = path.resolve("node_modules/.bin/tsx");
const main = path.resolve("src/cli/main.ts");

function aegis(args: string[], input: string, env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(tsx, [main, ...args], { env: { ...process.env, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

describe("aegis credential commands", () => {
  let t: TestBroker;
  let person: Actor;

  beforeAll(async () => {
    t = await startTestBroker("pglite");
    person = await createActor(t, {
      scopes: [
        "agent.register",
        "agent.key.add",
        "agent.key.list",
        "principal.whoami",
        "credential.create:provider:gcp",
      ],
    });
  });
  afterAll(() => t.stop());

  it("generates a key pair, seals a secret from stdin for an agent, and opens it only with the agent's key", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "aegis-cli-cred-"));
    const keyFile = path.join(dir, "agent.jwk");
    const generated = await aegis(["key", "generate", "--out", keyFile], "");
    expect(generated.code).toBe(0);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const publicJwk = JSON.parse(generated.stdout) as Record<string, string>;
    expect(publicJwk).not.toHaveProperty("d");

    const agents = t.client(AgentService, { key: person.key });
    const { agent } = await agents.registerAgent({ displayName: "cli bot", scopes: [] });
    await agents.addAgentKey({ agentId: agent?.id ?? "", use: KeyUse.ENCRYPTION, jwkJson: generated.stdout });

    const secret = `cli-secret-${crypto.randomUUID()}`;
    const put = await aegis(
      ["credential", "put", "--server", t.broker.url, "--provider", "gcp", "--app", "cli", "--account", "bot"].concat([
        "--name",
        "from the CLI",
        "--to-agent",
        agent?.id ?? "",
      ]),
      `${secret}\n`,
      { AEGIS_API_KEY: person.key },
    );
    expect(put.stderr).toBe("");
    expect(put.code).toBe(0);
    expect(put.stdout).toMatch(/^crd_\S+ version 1 sealed for kid_/);
    const stored = await t.db.database.prisma.credential.findFirstOrThrow({ where: { app: "cli" } });
    expect(stored.sealed).not.toContain(secret);

    const opened = await aegis(["credential", "open", "--key", keyFile], stored.sealed);
    expect(opened.code).toBe(0);
    expect(opened.stdout).toBe(secret);

    const otherKey = path.join(dir, "other.jwk");
    await aegis(["key", "generate", "--out", otherKey], "");
    expect((await aegis(["credential", "open", "--key", otherKey], stored.sealed)).code).not.toBe(0);
  });

  it.each([
    {
      args: ["--provider", "gcp"],
      env: { AEGIS_API_KEY: "" },
      message: "required option '--server <url>' not specified",
    },
    {
      args: ["--server", "http://127.0.0.1:1", "--provider", "gcp", "--app", "a", "--account", "b"],
      env: { AEGIS_API_KEY: "" },
      message: "credential put needs AEGIS_API_KEY (your API key) in the environment",
    },
    {
      args: ["--server", "http://127.0.0.1:1", "--provider", "gcp"],
      env: { AEGIS_API_KEY: "aegis_test_key" },
      message: "credential put needs --provider, --app and --account (or --update CREDENTIAL_ID)",
    },
  ])(
    "refuses wrong usage ($message) with exit code 2, a short message and where to find the usage",
    async ({ args, env, message }) => {
      const result = await aegis(["credential", "put", ...args], "x", env);
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(`aegis: ${message}\n(see "aegis credential put --help")\n`);
    },
  );
});
