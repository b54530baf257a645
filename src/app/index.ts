// The broker as the CLI starts it: configuration, logging and the root key
// and HSM key tools, light enough to load for `--help`. The broker itself (app/broker.ts,
// app/workers.ts, app/migrate.ts) is imported only when a command runs it.
export type { BootstrapResult } from "../bootstrap/index.js";
export { type Config, ConfigError, loadConfig } from "../core/config.js";
export { createLogger } from "../core/log.js";
export { initPkcs11Key } from "../crypto/open-root-of-trust.js";
export { generateRootKeyText } from "../crypto/root-key.js";
export type { WorkerMessage } from "./workers.js";
