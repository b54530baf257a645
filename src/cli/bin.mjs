#!/usr/bin/env node
// The package's `aegis` executable (and `npm start`): runs the TypeScript CLI
// through tsx's loader in this process, so an installed package needs no
// build step. Not through the `tsx` command: that runs the script in a child
// process, relays signals to it, and kills it outright (no graceful shutdown)
// when it has not reacted within 30 ms, as when its event loop is busy.
import { register } from "tsx/esm/api";

register();
await import("./main.ts");
