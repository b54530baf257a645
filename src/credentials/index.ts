// Credentials: sealed secrets at a target, which the broker can never open.
import type { BrokerContext } from "../core/context.js";
import { type BrokerModule, served } from "../core/module.js";
import { CredentialService, credentialService } from "./credential-service.js";

export function credentialsModule(ctx: BrokerContext): BrokerModule {
  return { name: "credentials", services: [served(CredentialService, credentialService(ctx))] };
}
