// The audit trail: the hash-chained log every state change and refusal is
// written to, and the service that queries, verifies and tails it.
import type { BrokerContext } from "../core/context.js";
import { type BrokerModule, served } from "../core/module.js";
import { AuditService, auditService } from "./audit-service.js";

export { AuditLog } from "./audit-log.js";
export { auditChainKey } from "./audit-queries.js";

export function auditModule(ctx: BrokerContext): BrokerModule {
  return { name: "audit", services: [served(AuditService, auditService(ctx))] };
}
