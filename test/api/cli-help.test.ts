// The `aegis` command's own usage, as a person meets it: every command and
// verb answers --help / -h / `aegis help …` with its own usage and does
// nothing else; wrong usage and unreachable servers end with a one-line
// message and the documented exit code (0 ok, 1 failure, 2 usage/config).
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { run } from "../../src/cli/program.js";
import { addServerCommands } from "../../src/cli/server-commands.js";
import { runAegis } from "../support/cli.js";

/** A directory that exists, and paths inside it that do not (yet). */
function scratch() {
  const dir = mkdtempSync(path.join(tmpdir(), "aegis-cli-help-"));
  return {
    dataDir: path.join(dir, "data"),
    configDir: path.join(dir, "config"),
    file: path.join(dir, "written.jwk"),
  };
}

function environment(paths: ReturnType<typeof scratch>, env: Record<string, string>): Record<string, string> {
  return {
    AEGIS_DATA_DIR: paths.dataDir,
    AEGIS_CONFIG_DIR: paths.configDir,
    AEGIS_PORT: "0",
    BROWSER: "none",
    ...env,
  };
}

/** Runs aegis as a process in a scratch environment; resolves once it has exited and its output is complete. */
async function aegis(args: string[], env: Record<string, string> = {}) {
  const paths = scratch();
  const cli = runAegis(
    args.map((a) => a.replace("$FILE", paths.file)),
    environment(paths, env),
  );
  const timeout = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), 15_000).unref());
  const code = await Promise.race([cli.closed, timeout]);
  if (code === "timeout") cli.child.kill("SIGKILL");
  return { code, stdout: cli.stdout(), stderr: cli.stderr(), ...paths };
}

afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

/**
 * Runs the same program as `aegis` in this process, in a scratch
 * environment, with everything it writes to stdout and stderr captured: a
 * process costs about a second of CPU, and the usage of ~100 commands is the
 * same program either way. The process itself (exit code, streams, nothing
 * started) is checked on a sample of every depth below.
 */
async function aegisInProcess(args: string[]) {
  const paths = scratch();
  for (const [name, value] of Object.entries(environment(paths, {}))) vi.stubEnv(name, value);
  let stdout = "";
  let stderr = "";
  vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const code = await run(
      args.map((a) => a.replace("$FILE", paths.file)),
      false,
      addServerCommands,
    );
    return { code, stdout, stderr, ...paths };
  } finally {
    vi.restoreAllMocks();
  }
}

// What a root key, an API key or any other generated secret looks like: 43 base64url characters.
const generatedKey = /(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/;

// The operator and people commands, with the options their --help must mention.
const operatorCommands: { command: string[]; work: string[]; mentions: string[] }[] = [
  { command: ["resource-servers"], work: [], mentions: ["create", "list", "get", "scopes", "delete"] },
  {
    command: ["resource-servers", "create"],
    work: ["payments", "--name", "Payments"],
    mentions: [
      "<identifier>",
      "--name <name>",
      "--description <text>",
      "--scope <name[=description]>",
      "--default-lifetime <seconds>",
      "--max-lifetime <seconds>",
      "--require-dpop",
      "--server <url>",
      "--key-file <file>",
      "--json",
      "AEGIS_API_KEY",
    ],
  },
  { command: ["resource-servers", "list"], work: [], mentions: ["--all", "--page-token <token>", "--page-size <n>"] },
  { command: ["resource-servers", "get"], work: ["rsv_x"], mentions: ["<id>", "--json"] },
  { command: ["resource-servers", "scopes"], work: [], mentions: ["add", "deprecate", "restore"] },
  { command: ["resource-servers", "scopes", "add"], work: ["rsv_x", "a.b"], mentions: ["<id>", "<scopes...>"] },
  { command: ["resource-servers", "scopes", "deprecate"], work: ["rsv_x", "a.b"], mentions: ["<names...>"] },
  { command: ["resource-servers", "scopes", "restore"], work: ["rsv_x", "a.b"], mentions: ["<names...>"] },
  { command: ["resource-servers", "delete"], work: ["rsv_x"], mentions: ["<id>", "--force"] },
  { command: ["people"], work: [], mentions: ["add", "list", "get", "suspend", "reactivate", "remove", "enroll"] },
  {
    command: ["people", "add"],
    work: ["--name", "Ada"],
    mentions: ["--name <name>", "--username <username>", "--email <email>", "--scope <scope>", "one-time"],
  },
  { command: ["people", "list"], work: [], mentions: ["--status <status>", "--all", "--page-token <token>"] },
  { command: ["people", "get"], work: ["prn_x"], mentions: ["<id>", "--json"] },
  { command: ["people", "suspend"], work: ["prn_x"], mentions: ["<id>"] },
  { command: ["people", "reactivate"], work: ["prn_x"], mentions: ["<id>"] },
  { command: ["people", "remove"], work: ["prn_x"], mentions: ["<id>", "irreversible"] },
  { command: ["people", "enroll"], work: ["prn_x"], mentions: ["<id>", "one-time"] },
  { command: ["grants"], work: [], mentions: ["add", "list", "remove"] },
  {
    command: ["grants", "add"],
    work: ["prn_x", "repo.read"],
    mentions: ["<principal-id>", "<scope>", "--resource-server <id>"],
  },
  { command: ["grants", "list"], work: ["prn_x"], mentions: ["<principal-id>", "--json"] },
  { command: ["grants", "remove"], work: ["grt_x"], mentions: ["<grant-id>"] },
  { command: ["agents"], work: [], mentions: ["register", "list", "get", "suspend", "reactivate", "revoke", "keys"] },
  {
    command: ["agents", "register"],
    work: ["--name", "bot"],
    mentions: ["--name <name>", "--description <text>", "--owner <person-id>", "--scope <scope>"],
  },
  { command: ["agents", "list"], work: [], mentions: ["--status <status>", "--owner <person-id>", "--all"] },
  { command: ["agents", "get"], work: ["prn_x"], mentions: ["<id>"] },
  { command: ["agents", "suspend"], work: ["prn_x"], mentions: ["<id>"] },
  { command: ["agents", "reactivate"], work: ["prn_x"], mentions: ["<id>"] },
  { command: ["agents", "revoke"], work: ["prn_x"], mentions: ["<id>", "irreversible"] },
  { command: ["agents", "keys"], work: [], mentions: ["add", "list", "revoke"] },
  {
    command: ["agents", "keys", "add"],
    work: ["prn_x", "--use", "signing"],
    mentions: ["<agent-id>", "--use <use>", "--jwk-file <file>", "--alg <alg>", "private"],
  },
  { command: ["agents", "keys", "list"], work: ["prn_x"], mentions: ["<agent-id>"] },
  { command: ["agents", "keys", "revoke"], work: ["kid_x"], mentions: ["<key-id>"] },
  { command: ["api-keys"], work: [], mentions: ["create", "list", "rotate", "revoke"] },
  {
    command: ["api-keys", "create"],
    work: ["prn_x"],
    mentions: ["<principal-id>", "--label <label>", "--ttl <seconds>", "once"],
  },
  { command: ["api-keys", "list"], work: ["prn_x"], mentions: ["<principal-id>"] },
  { command: ["api-keys", "rotate"], work: ["kx"], mentions: ["<key-id>", "--grace <seconds>"] },
  { command: ["api-keys", "revoke"], work: ["kx"], mentions: ["<key-id>"] },
  { command: ["tokens"], work: [], mentions: ["mint", "user-token", "introspect", "revoke"] },
  {
    command: ["tokens", "user-token"],
    work: ["--scope", "agent.read"],
    mentions: ["--scope <scope>", "--ttl <seconds>", "--label <label>", "--audience <identifier>", "once"],
  },
  {
    command: ["tokens", "mint"],
    work: ["--audience", "payments"],
    mentions: ["--audience <identifier>", "--scope <scope>", "--lifetime <seconds>"],
  },
  { command: ["tokens", "introspect"], work: [], mentions: ["stdin"] },
  { command: ["tokens", "revoke"], work: ["--jti", "x"], mentions: ["--jti <jti>", "stdin"] },
  { command: ["audit"], work: [], mentions: ["list", "tail", "verify"] },
  {
    command: ["audit", "tail"],
    work: [],
    mentions: ["--after <seq>", "--action <action>", "--outcome <outcome>", "Ctrl-C"],
  },
  { command: ["leases"], work: [], mentions: ["create", "redeem", "revoke", "get", "list"] },
  {
    command: ["leases", "create"],
    work: ["--provider", "gcp", "--app", "a", "--account", "b"],
    mentions: ["--uses <n>", "--lifetime <seconds>", "--holder <principal-id>", "--holder-jkt <thumbprint>", "DPoP"],
  },
  { command: ["leases", "redeem"], work: ["lse_x"], mentions: ["<lease-id>", "credential open", "DPoP"] },
  { command: ["leases", "revoke"], work: ["lse_x"], mentions: ["<lease-id>"] },
  { command: ["leases", "get"], work: ["lse_x"], mentions: ["<lease-id>"] },
  { command: ["leases", "list"], work: [], mentions: ["--state <state>", "--holder <principal-id>", "--all"] },
  {
    command: ["keys"],
    work: [],
    mentions: [
      "create",
      "list",
      "get",
      "activate",
      "deactivate",
      "rotate",
      "compromise",
      "destroy",
      "cancel-destroy",
      "versions",
      "sign",
      "verify",
      "encrypt",
      "decrypt",
      "wrap",
      "unwrap",
      "data-key",
      "public-key",
    ],
  },
  {
    command: ["keys", "create"],
    work: ["--spec", "ec-p256"],
    mentions: [
      "--spec <spec>",
      "ec-p256",
      "--usage <usage>",
      "--label <name=value>",
      "--activate",
      "--require-dpop",
      "--rotation-period <seconds>",
      "kms.key.create",
    ],
  },
  {
    command: ["keys", "list"],
    work: [],
    mentions: ["--state <state>", "--spec <spec>", "--label <name=value>", "--all"],
  },
  { command: ["keys", "get"], work: ["key_x"], mentions: ["<key-id>", "--json"] },
  { command: ["keys", "activate"], work: ["key_x"], mentions: ["<key-id>", "ACTIVE"] },
  { command: ["keys", "deactivate"], work: ["key_x"], mentions: ["<key-id>", "DEACTIVATED"] },
  { command: ["keys", "rotate"], work: ["key_x"], mentions: ["<key-id>", "new version"] },
  { command: ["keys", "compromise"], work: ["key_x"], mentions: ["<key-id>", "--reason <text>", "for good"] },
  { command: ["keys", "destroy"], work: ["key_x"], mentions: ["<key-id>", "--days <n>", "cancel-destroy"] },
  { command: ["keys", "cancel-destroy"], work: ["key_x"], mentions: ["<key-id>"] },
  { command: ["keys", "versions"], work: ["key_x"], mentions: ["<key-id>", "--json"] },
  { command: ["keys", "public-key"], work: ["key_x"], mentions: ["<key-id>", "--key-version <n>", "--jwk", "PEM"] },
  {
    command: ["keys", "sign"],
    work: ["key_x", "--algorithm", "ES256"],
    mentions: [
      "<key-id>",
      "--algorithm <name>",
      "ES256",
      "--in <file>",
      "stdin",
      "--digest",
      "--raw-signature",
      "--base64",
    ],
  },
  {
    command: ["keys", "verify"],
    work: ["key_x", "--algorithm", "ES256", "--signature", "s"],
    mentions: ["<key-id>", "--algorithm <name>", "--signature <file>", "--in <file>", "stdin", "--base64", "exit 0"],
  },
  {
    command: ["keys", "encrypt"],
    work: ["key_x", "--algorithm", "AES-GCM"],
    mentions: [
      "<key-id>",
      "--algorithm <name>",
      "AES-GCM",
      "--context <key=value>",
      "--in <file>",
      "stdin",
      "--base64",
    ],
  },
  {
    command: ["keys", "decrypt"],
    work: ["key_x"],
    mentions: ["<key-id>", "--context <key=value>", "--in <file>", "stdin", "--base64"],
  },
  {
    command: ["keys", "wrap"],
    work: ["key_x", "--algorithm", "AES-GCM"],
    mentions: ["<key-id>", "--algorithm <name>", "--context <key=value>", "--in <file>", "--base64"],
  },
  {
    command: ["keys", "unwrap"],
    work: ["key_x"],
    mentions: ["<key-id>", "--context <key=value>", "--in <file>", "--base64"],
  },
  {
    command: ["keys", "data-key"],
    work: ["key_x", "--algorithm", "AES-GCM"],
    mentions: [
      "<key-id>",
      "--algorithm <name>",
      "--size <spec>",
      "--context <key=value>",
      "--wrapped-out <file>",
      "--without-plaintext",
      "--base64",
    ],
  },
  { command: ["signing-keys"], work: [], mentions: ["list", "rotate", "retire"] },
  { command: ["signing-keys", "list"], work: [], mentions: ["--json"] },
  { command: ["signing-keys", "rotate"], work: [], mentions: ["next key"] },
  { command: ["signing-keys", "retire"], work: ["kid_x"], mentions: ["<kid>", "JWKS"] },
  { command: ["credential", "list"], work: [], mentions: ["--provider <provider>", "--all"] },
  { command: ["credential", "get"], work: ["crd_x"], mentions: ["<credential-id>", "sealed for"] },
  { command: ["credential", "delete"], work: ["crd_x"], mentions: ["<credential-id>", "lease"] },
  {
    command: ["audit", "list"],
    work: [],
    mentions: [
      "--actor <principal-id>",
      "--action <action>",
      "--outcome <outcome>",
      "--since <time>",
      "--until <time>",
    ],
  },
  { command: ["audit", "verify"], work: [], mentions: ["hash chain"] },
  { command: ["tenants"], work: [], mentions: ["create", "list"] },
  {
    command: ["tenants", "create"],
    work: ["acme"],
    mentions: [
      "<name>",
      "--display-name <name>",
      "--admin-name <name>",
      "--admin-username <username>",
      "--admin-email <email>",
    ],
  },
  { command: ["tenants", "list"], work: [], mentions: ["--all"] },
  { command: ["roles"], work: [], mentions: ["list", "get", "create", "assign", "unassign", "delete"] },
  { command: ["roles", "list"], work: [], mentions: ["--all", "--page-token <token>"] },
  { command: ["roles", "get"], work: ["auditor"], mentions: ["<role-id>"] },
  { command: ["roles", "create"], work: ["readers"], mentions: ["<name>", "--description <text>", "--scope <scope>"] },
  { command: ["roles", "assign"], work: ["prn_x", "auditor"], mentions: ["<principal-id>", "<role-id>"] },
  { command: ["roles", "unassign"], work: ["prn_x", "auditor"], mentions: ["<principal-id>", "<role-id>"] },
  { command: ["roles", "delete"], work: ["rol_x"], mentions: ["<role-id>", "--force"] },
];

// Each command with arguments that would make it do its work were --help not there.
const commands: { command: string[]; work: string[] }[] = [
  { command: [], work: [] },
  { command: ["serve"], work: [] },
  { command: ["migrate"], work: [] },
  { command: ["root-key"], work: [] },
  { command: ["root-key", "generate"], work: [] },
  { command: ["hsm"], work: [] },
  { command: ["hsm", "init-key"], work: [] },
  { command: ["login"], work: ["--server", "http://127.0.0.1:1"] },
  { command: ["whoami"], work: [] },
  { command: ["logout"], work: [] },
  { command: ["profiles"], work: [] },
  { command: ["profiles", "list"], work: [] },
  { command: ["profiles", "use"], work: ["http://127.0.0.1:1"] },
  { command: ["key"], work: [] },
  { command: ["key", "generate"], work: ["--out", "$FILE"] },
  { command: ["credential"], work: [] },
  {
    command: ["credential", "put"],
    work: ["--server", "http://127.0.0.1:1", "--provider", "gcp", "--app", "a", "--account", "b", "--to-self"],
  },
  { command: ["credential", "open"], work: ["--key", "$FILE"] },
  ...operatorCommands.map(({ command, work }) => ({
    command,
    work: command.length > 1 ? [...work, "--server", "http://127.0.0.1:1"] : work,
  })),
];

// Commands with another name, as their own usage line shows it.
const aliased: Record<string, string> = {};

function usageLine(command: string[]): string {
  const name = ["aegis", ...command.map((word, i) => (i === command.length - 1 ? (aliased[word] ?? word) : word))].join(
    " ",
  );
  return command.length === 0 ? "Usage: aegis [options] [command]" : `Usage: ${name} [options]`;
}

const mentionsOf = new Map(operatorCommands.map(({ command, mentions }) => [command.join(" "), mentions]));

/** What every --help must be: its own usage with an example, no secret, and nothing done. */
function expectOwnUsage(
  result: Awaited<ReturnType<typeof aegis>> | Awaited<ReturnType<typeof aegisInProcess>>,
  command: string[],
) {
  expect(result.code).toBe(0);
  expect(result.stderr).toBe("");
  const lines = result.stdout.split("\n");
  expect(lines[0]?.startsWith(usageLine(command))).toBe(true);
  expect(result.stdout).toMatch(/\nExamples?:\n {2}\$ .*aegis /);
  expect(result.stdout).not.toMatch(generatedKey);
  expect(result.stdout).not.toContain("could not reach");
  expect(existsSync(result.dataDir)).toBe(false);
  expect(existsSync(result.configDir)).toBe(false);
  expect(existsSync(result.file)).toBe(false);
}

// Every command's --help in this process (it would write, create or reach
// something if it did its work: all observed); -h, as a real `aegis`
// process, on a sample of every depth, as commander gives both to every
// command alike.
describe("aegis --help", () => {
  it.each(commands.map((run) => ({ ...run, name: [...run.command, ...run.work].join(" ") })))(
    "aegis $name --help shows its own usage, mentions its options and does nothing else",
    async ({ command, work }) => {
      const result = await aegisInProcess([...command, ...work, "--help"]);
      expectOwnUsage(result, command);
      for (const mention of mentionsOf.get(command.join(" ")) ?? []) expect(result.stdout).toContain(mention);
    },
  );

  it.each(
    commands
      .filter(({ command }) =>
        ["", "serve", "credential put", "resource-servers create", "roles assign"].includes(command.join(" ")),
      )
      .map((run) => ({ ...run, name: [...run.command, ...run.work].join(" ") })),
  )("aegis $name -h is the same as --help", async ({ command, work }) => {
    expectOwnUsage(await aegis([...command, ...work, "-h"]), command);
  });

  it.each(
    [
      { argv: ["help"], usage: usageLine([]) },
      { argv: [], usage: usageLine([]) },
      { argv: ["help", "serve"], usage: usageLine(["serve"]) },
      { argv: ["help", "credential"], usage: usageLine(["credential"]) },
      { argv: ["help", "root-key", "generate"], usage: usageLine(["root-key", "generate"]) },
    ].map((run) => ({ ...run, name: run.argv.join(" ") })),
  )("aegis $name shows that usage", async ({ argv, usage }) => {
    const result = await aegisInProcess(argv);
    expect(result.code).toBe(0);
    expect(result.stdout.startsWith(usage)).toBe(true);
    expect(result.stdout).not.toMatch(generatedKey);
  });

  it("lists every command and documents the exit codes", async () => {
    const { stdout } = await aegisInProcess(["--help"]);
    for (const command of [
      "serve",
      "migrate",
      "root-key",
      "hsm",
      "login",
      "whoami",
      "logout",
      "profiles",
      "key",
      "credential",
      "leases",
      "resource-servers",
      "people",
      "grants",
      "agents",
      "api-keys",
      "keys",
      "tokens",
      "signing-keys",
      "audit",
      "tenants",
      "roles",
      "help",
    ]) {
      expect(stdout).toMatch(new RegExp(`\\n {2}${command}\\b`));
    }
    expect(stdout).toContain("Exit codes: 0 ok, 1 failure, 2 usage or configuration error.");
    expect(stdout).toContain("3 not found, 4 not allowed");
    expect(stdout).toContain("5 unavailable");
  });

  it("serve --help starts no broker: it exits at once and creates no data directory", async () => {
    const started = Date.now();
    const result = await aegis(["serve", "--help"]);
    expect(result.code).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(result.stdout).not.toContain("listening");
    expect(existsSync(result.dataDir)).toBe(false);
  });

  it("--version prints the package's version", async () => {
    const { version } = JSON.parse(readFileSync("package.json", "utf8")) as { version: string };
    for (const flag of ["--version", "-V"]) {
      const result = await aegis([flag]);
      expect(result.code).toBe(0);
      expect(result.stdout).toBe(`${version}\n`);
    }
  });
});

describe("aegis usage errors", () => {
  it.each(
    [
      { argv: ["frobnicate"], message: "aegis: unknown command 'frobnicate'", help: "aegis --help" },
      { argv: ["help", "frobnicate"], message: "aegis: unknown command 'frobnicate'", help: "aegis --help" },
      { argv: ["serve", "--bogus"], message: "aegis: unknown option '--bogus'", help: "aegis serve --help" },
      { argv: ["root-key", "make"], message: "aegis: unknown command 'make'", help: "aegis root-key --help" },
      { argv: ["login"], message: "aegis: required option '--server <url>' not specified", help: "aegis login --help" },
      {
        argv: ["login", "--server", "127.0.0.1:8080"],
        message: "aegis: option '--server <url>' argument '127.0.0.1:8080' is invalid",
        help: "aegis login --help",
      },
      {
        argv: ["key", "generate", "--out", "$FILE", "--curve", "P-521"],
        message: "Allowed choices are X25519, P-256",
        help: "aegis key generate --help",
      },
      {
        argv: ["credential", "open"],
        message: "aegis: required option '--key <file>' not specified",
        help: "aegis credential open --help",
      },
    ].map((run) => ({ ...run, name: run.argv.join(" ") })),
  )("aegis $name exits 2 with a short message on stderr", async ({ argv, message, help }) => {
    const result = await aegis(argv);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain(message);
    expect(result.stderr).toContain(`(see "${help}")`);
    expect(result.stderr.trim().split("\n").length).toBeLessThanOrEqual(2);
    expect(existsSync(result.dataDir)).toBe(false);
    expect(existsSync(result.file)).toBe(false);
  });

  it("a command group without its verb shows the group's usage on stderr, exit 2", async () => {
    const result = await aegis(["key"]);
    expect(result.code).toBe(2);
    expect(result.stderr.startsWith(usageLine(["key"]))).toBe(true);
  });

  it("a configuration error still exits 2 naming the variable", async () => {
    const result = await aegis(["serve"], { AEGIS_PORT: "http" });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^aegis: configuration error: AEGIS_PORT: must be a whole number[^\n]*\n$/);
  });
});

describe("aegis failures", () => {
  /** A port on which nothing listens (it was free a moment ago). */
  async function closedPort(): Promise<number> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    return port;
  }

  it("a server that refuses the connection is reported in one line, exit 5 (unavailable), no stack trace", async () => {
    const server = `http://127.0.0.1:${await closedPort()}`;
    const result = await aegis(["login", "--server", server]);
    expect(result.code).toBe(5);
    expect(result.stderr).toBe(`aegis: could not reach ${server}: connection refused\n`);
  });

  it("login to http://127.0.0.1:1 says it could not reach it, exit 5, no stack trace", async () => {
    const result = await aegis(["login", "--server", "http://127.0.0.1:1"]);
    expect(result.code).toBe(5);
    expect(result.stderr).toMatch(/^aegis: could not reach http:\/\/127\.0\.0\.1:1: .+\n$/);
    expect(result.stderr).not.toMatch(/TypeError|fetch failed|\n\s+at /);
  });

  it("Connect calls to an unreachable broker say so too", async () => {
    const server = `http://127.0.0.1:${await closedPort()}`;
    const result = await aegis(
      ["credential", "put", "--server", server, "--provider", "gcp", "--app", "a", "--account", "b", "--to-self"],
      { AEGIS_API_KEY: "aegis_test_key" },
    );
    expect(result.code).toBe(5);
    expect(result.stderr).toBe(`aegis: could not reach ${server}: connection refused\n`);
  });

  it("AEGIS_DEBUG=1 prints the stack trace and its cause", async () => {
    const server = `http://127.0.0.1:${await closedPort()}`;
    const result = await aegis(["login", "--server", server], { AEGIS_DEBUG: "1" });
    expect(result.code).toBe(5);
    expect(result.stderr).toContain(`UnreachableError: could not reach ${server}: connection refused`);
    expect(result.stderr).toMatch(/\n\s+at /);
    expect(result.stderr).toContain("caused by: TypeError: fetch failed");
  });
});
