// API keys of any principal, people and agents alike: create, list, rotate
// with a grace period, revoke.
import type { BrokerContext } from "../core/context.js";
import { type BrokerModule, served } from "../core/module.js";
import { ApiKeyService, apiKeyService } from "./api-key-service.js";

export function apiKeysModule(ctx: BrokerContext): BrokerModule {
  return { name: "apikeys", services: [served(ApiKeyService, apiKeyService(ctx))] };
}
