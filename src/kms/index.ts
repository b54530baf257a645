// The KMS: keys that never leave the broker, for agents and people (issue
// 17). Key administration (keys.ts) and key use (operations.ts) are
// separate rights on `key:<id>`; material is wrapped by the root of trust
// and cached unwrapped in memory, dropped when the revocation feed names the
// key (key-store.ts); periodic jobs destroy due keys' material and rotate
// keys on their period (jobs.ts).
import type { BrokerContext } from "../core/context.js";
import { type BrokerModule, served } from "../core/module.js";
import { kmsJobs } from "./jobs.js";
import type { KeyOpMetrics } from "./key-audit.js";
import { KeyService, keyService } from "./key-service.js";
import { KeyStore } from "./key-store.js";
import { KeyAdmin } from "./keys.js";
import { KeyOperations } from "./operations.js";

export type { KeyOpMetrics } from "./key-audit.js";

export function kmsModule(ctx: BrokerContext, metrics: KeyOpMetrics): BrokerModule {
  const store = new KeyStore(ctx);
  const admin = new KeyAdmin(ctx, store, metrics);
  const ops = new KeyOperations(ctx, store, metrics);
  return {
    name: "kms",
    services: [
      served(
        KeyService,
        keyService(admin, ops, () => ctx.clock.now()),
      ),
    ],
    jobs: kmsJobs(ctx, store, ctx.config.kmsJobIntervalMs),
    onRevocation: (entry) => store.onRevocation(entry),
  };
}
