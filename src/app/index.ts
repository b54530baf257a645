// The broker as the CLI starts it: configuration, logging and the root key
// tool, light enough to load for `--help`. The broker itself (app/broker.ts,
// app/workers.ts, app/migrate.ts) is imported only when a command runs it.
export type { BootstrapResult } from "../bootstrap/index.js";
export { type Config, ConfigError, loadConfig } from "../core/config.js";
export { createLogger } from "../core/log.js";
export { generateRootKeyText } from "../crypto/root-key.js";
export type { WorkerMessage } from "./workers.js";
