// The `aegis` program: one commander program gathering the commands of
// login-commands.ts (login, whoami, logout), credential-commands.ts (key,
// credential) and the operator and people commands, one file per noun
// (leases, resource-servers, people, grants, roles, agents and api-keys,
// tokens, signing-keys, KMS keys, audit, tenants), which reach the broker through
// broker-access.ts and print through output.ts; serve, migrate and root-key are added by the entry
// point (main.ts from the repository, client-main.ts in the npm package).
// Commander parses the options and answers `--help` before any command
// runs; every error that reaches the top ends the process through
// describeFailure (failures.ts), which decides the exit code and the one
// line on stderr.
import { createRequire } from "node:module";
import { Command } from "commander";
import { addAgentCommands, addApiKeyCommands } from "./agent-commands.js";
import { addAgentKeyCommands } from "./agent-key-commands.js";
import { addAuditCommands } from "./audit-commands.js";
import { addCredentialCommands, addKeyCommands } from "./credential-commands.js";
import { describeFailure } from "./failures.js";
import { addGrantCommands } from "./grant-commands.js";
import { addKmsKeyCommands } from "./key-commands.js";
import { addLeaseCommands } from "./lease-commands.js";
import { addLoginCommands } from "./login-commands.js";
import { addPeopleCommands } from "./people-commands.js";
import { addResourceServerCommands } from "./resource-server-commands.js";
import { addRoleCommands } from "./role-commands.js";
import { addSigningKeyCommands } from "./signing-key-commands.js";
import { addTenantCommands } from "./tenant-commands.js";
import { addTokenCommands } from "./token-commands.js";

// The package's own manifest, by self-reference: the repository's root in a
// checkout, node_modules/aegis-broker/ in an installed package.
const { version } = createRequire(import.meta.url)("aegis-broker/package.json") as { version: string };

function createProgram(addServerCommands: (program: Command) => void): Command {
  const program = new Command("aegis")
    .description("aegis – credential broker for AI agents")
    .version(version, "-V, --version", "print the version")
    .helpOption("-h, --help", "show this usage")
    .helpCommand("help [command]", "show the usage of a command")
    .configureOutput({ outputError: (message, write) => write(`aegis: ${message.replace(/^error: /, "")}`) })
    .exitOverride()
    .addHelpText(
      "after",
      `
Exit codes: 0 ok, 1 failure, 2 usage or configuration error.
  3 not found, 4 not allowed (permission denied or not authenticated),
  5 unavailable (the broker could not be reached, or is not serving).
AEGIS_DEBUG=1 prints the stack trace of a failure.

Examples:
  $ aegis serve
  $ aegis login --server http://127.0.0.1:8080
  $ aegis help credential put`,
    );
  // Subcommands made by .command() inherit the settings above (output, exitOverride, help).
  addServerCommands(program);
  addLoginCommands(program);
  addKeyCommands(program);
  addCredentialCommands(program);
  addLeaseCommands(program);
  addResourceServerCommands(program);
  addPeopleCommands(program);
  addGrantCommands(program);
  addRoleCommands(program);
  addAgentCommands(program);
  addAgentKeyCommands(program);
  addApiKeyCommands(program);
  addTokenCommands(program);
  addSigningKeyCommands(program);
  addKmsKeyCommands(program);
  addAuditCommands(program);
  addTenantCommands(program);
  for (const command of allCommands(program)) command.showHelpAfterError(`(see "${usageName(command)} --help")`);
  return program;
}

function* allCommands(command: Command): Generator<Command> {
  yield command;
  for (const sub of command.commands) yield* allCommands(sub);
}

function usageName(command: Command): string {
  return command.parent ? `${usageName(command.parent)} ${command.name()}` : command.name();
}

/**
 * `aegis` alone shows the usage, and `aegis help root-key generate` is
 * `aegis root-key generate --help` (commander's help command goes one level
 * deep only); `aegis help nonsense` is then an unknown command.
 */
function withHelpAsOption(program: Command, argv: string[]): string[] {
  if (argv.length === 0) return ["--help"];
  if (argv[0] !== "help" || argv.length === 1) return argv;
  const known = program.commands.some((command) => command.name() === argv[1]);
  return known ? [...argv.slice(1), "--help"] : argv.slice(1);
}

/** Runs `aegis ...argv` and resolves to the exit code (exported for the in-process usage tests). */
export async function run(
  argv: string[],
  debug: boolean,
  addServerCommands: (program: Command) => void,
): Promise<number> {
  const program = createProgram(addServerCommands);
  try {
    await program.parseAsync(withHelpAsOption(program, argv), { from: "user" });
    return 0;
  } catch (error) {
    const failure = describeFailure(error, debug);
    if (failure.message !== undefined) process.stderr.write(`aegis: ${failure.message}\n`);
    return failure.exitCode;
  }
}

/**
 * Runs `aegis` with this process's arguments and sets its exit code.
 * `addServerCommands` adds serve, migrate and root-key: the broker's own
 * (server-commands.ts) when run from the repository (main.ts), placeholders
 * saying where the broker runs in the npm package (client-main.ts).
 */
export async function runCli(addServerCommands: (program: Command) => void): Promise<void> {
  // A reader that stops early (`aegis --help | head -1`) closes the pipe; that is no failure of aegis.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
    process.exit(process.exitCode ?? 0);
  });
  process.exitCode = await run(process.argv.slice(2), process.env.AEGIS_DEBUG === "1", addServerCommands);
}
