// Server reflection: `grpc.reflection.v1` and `v1alpha`, so grpcurl's
// `list` / `describe` and `buf curl` without `--schema` work against the
// broker, describing its public services only (./public-schema.ts).
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { type BrokerModule, served } from "../core/module.js";
import { policyOf, Visibility } from "../policy/method-policy.js";
import { type PublicSchema, publicSchema } from "./public-schema.js";
import {
  reflectionService,
  reflectionServiceAlpha,
  ServerReflection,
  ServerReflectionAlpha,
} from "./reflection-service.js";

export { type PublicSchema, publicSchema } from "./public-schema.js";
export { ServerReflection, ServerReflectionAlpha };

/** Public: declared so in proto; a method without a policy is not (deny by default). */
export const isPublicMethod = (method: DescMethod): boolean => policyOf(method)?.visibility === Visibility.PUBLIC;

/** `services`: everything the broker serves (reflection included); only the public part is described. */
export function reflectionModule(services: readonly DescService[]): BrokerModule {
  // Built on the first reflection call, not at start-up: most brokers are never asked.
  let built: PublicSchema | undefined;
  const schema = (): PublicSchema => {
    built ??= publicSchema(services, isPublicMethod);
    return built;
  };
  return {
    name: "reflection",
    services: [
      served(ServerReflection, reflectionService(schema)),
      served(ServerReflectionAlpha, reflectionServiceAlpha(schema)),
    ],
  };
}
