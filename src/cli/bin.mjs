#!/usr/bin/env node
// The package's `aegis` executable: runs the TypeScript CLI through tsx's
// loader, so an installed package needs no build step.
import { register } from "tsx/esm/api";

register();
await import("./main.ts");
