// Agents and their public keys (their API keys are apikeys/).
import type { BrokerContext } from "../core/context.js";
import { type BrokerModule, served } from "../core/module.js";
import { AgentService, agentService } from "./agent-service.js";

export function agentsModule(ctx: BrokerContext): BrokerModule {
  return { name: "agents", services: [served(AgentService, agentService(ctx))] };
}
