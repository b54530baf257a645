// The `aegis` command as the repository runs it (src/cli/bin.mjs, `npm
// start`): the whole program of program.ts with the broker's own serve,
// migrate and root-key commands (server-commands.ts).
import { runCli } from "./program.js";
import { addServerCommands } from "./server-commands.js";

await runCli(addServerCommands);
