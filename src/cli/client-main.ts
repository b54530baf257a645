#!/usr/bin/env node
// The `aegis` command as the npm package ships it (its `bin`, compiled to
// client-main.js by `npm run build`): every command that talks to a broker,
// without the broker itself. The package holds the SDK, the clients and
// this CLI, not the broker's database layer, migrations and servers, so
// serve, migrate and root-key only say where the broker runs.
import type { Command } from "commander";
import { UsageError } from "./failures.js";
import { runCli } from "./program.js";

const notPackaged =
  "is not in the npm package, which holds the SDK, the clients and the client commands: " +
  "run the broker from its repository (npm ci, then npm start; see its README)";

function addBrokerPlaceholders(program: Command): void {
  for (const [name, summary] of [
    ["serve", "run the broker (not in this package)"],
    ["migrate", "apply database migrations (not in this package)"],
    ["root-key", "make root keys (not in this package)"],
  ] as const) {
    program
      .command(name)
      .summary(summary)
      .description(`aegis ${name} ${notPackaged}.`)
      .allowUnknownOption()
      .allowExcessArguments()
      .action(() => {
        throw new UsageError(`${name} ${notPackaged}`);
      });
  }
}

await runCli(addBrokerPlaceholders);
