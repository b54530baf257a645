// Tier: in memory (createRouterTransport, no sockets). The declared policy
// of every RPC, enforced by the one pipeline: walked over every method of
// every service the broker serves, so a method added without the right
// policy, or a handler reached before the pipeline decided, fails here.
import type { DescMethod } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import { services } from "../../src/app/modules.js";
import { Authorization, policyOf, Visibility } from "../../src/policy/method-policy.js";
import { reasonOf } from "../support/errors.js";
import { type MemoryBroker, startMemoryBroker } from "../support/memory.js";

const unaryMethods = services.flatMap((service) =>
  service.methods
    .filter((m) => m.methodKind === "unary")
    .map((method) => [`${service.name}.${method.name}`, method] as const),
);

/** Calls one unary method with an empty request; the error, or undefined. */
async function callEmpty(t: MemoryBroker, method: DescMethod, key?: string): Promise<ConnectError | undefined> {
  const client = t.client(method.parent, key) as unknown as Record<string, (req: unknown) => Promise<unknown>>;
  const name = method.localName;
  try {
    await client[name]?.(create(method.input));
    return undefined;
  } catch (error) {
    return ConnectError.from(error);
  }
}

describe("every RPC's declared policy, in memory", () => {
  let t: MemoryBroker;
  beforeAll(async () => {
    t = await startMemoryBroker();
  });
  afterAll(() => t.stop());

  it.each(unaryMethods)(
    "%s refuses a caller without credentials unless it is declared anonymous",
    async (_, method) => {
      const policy = policyOf(method);
      const error = await callEmpty(t, method);
      if (policy?.authorization === Authorization.ANONYMOUS) {
        // The pipeline lets it through; the handler may still refuse the empty
        // request (an unknown client is the device flow's own INVALID_CLIENT).
        expect(reasonOf(error)).not.toBe("UNAUTHENTICATED");
      } else {
        expect(error?.code).toBe(Code.Unauthenticated);
        expect(reasonOf(error)).toBe("UNAUTHENTICATED");
      }
    },
  );

  it.each(unaryMethods.filter(([, m]) => policyOf(m)?.visibility === Visibility.PRIVATE))(
    "%s (private) refuses an authenticated caller without the elevated grant",
    async (_, method) => {
      // A user API token of the admin carries only what it names: never broker.admin.
      const { secret } = await t
        .client(TokenService, t.adminKey)
        .mintUserApiToken({ scopes: ["agent.read"], label: "narrow" });
      const error = await callEmpty(t, method, secret);
      expect(error?.code).toBe(Code.PermissionDenied);
      expect(reasonOf(error)).toBe("ELEVATED_GRANT_REQUIRED");
    },
  );
});
