// Fixtures that build the actors a test needs in one call, through the same
// domain code the broker uses (a tenant, a principal with grants and a key).
import { type Duration, durationFromMs } from "@bufbuild/protobuf/wkt";
import { GrantService } from "../../gen/proto/aegis/grant/v1/grant_pb.js";
import { ResourceServerService } from "../../gen/proto/aegis/resourceserver/v1/resource_server_pb.js";
import { apiKeyHashPurpose, issueApiKey } from "../../src/auth/api-keys.js";
import type { PrincipalKind } from "../../src/core/caller.js";
import { RootKey } from "../../src/crypto/root-key.js";
import { newId } from "../../src/protocol/ids.js";
import type { TestBroker } from "./broker.js";

/** `n` seconds as the API's google.protobuf.Duration. */
export function seconds(n: number): Duration {
  return durationFromMs(n * 1000);
}

export interface Actor {
  readonly tenantId: string;
  readonly principalId: string;
  readonly key: string;
  readonly keyId: string;
}

/** A principal with `scopes` and an API key, in a new tenant unless one is given. */
export async function createActor(
  t: TestBroker,
  options: { scopes?: string[]; kind?: PrincipalKind; tenantId?: string; name?: string } = {},
): Promise<Actor> {
  const prisma = t.db.database.prisma;
  const hashKey = new RootKey(Buffer.from(t.config.rootKey ?? "", "base64url")).deriveKey(apiKeyHashPurpose);
  return prisma.$transaction(async (tx) => {
    const tenantId =
      options.tenantId ??
      (
        await tx.tenant.create({
          data: { id: newId("tenant"), name: `t-${newId("tenant").slice(4, 16)}`, displayName: "Test" },
        })
      ).id;
    const principal = await tx.principal.create({
      data: {
        id: newId("principal"),
        tenantId,
        kind: options.kind ?? "person",
        displayName: options.name ?? "Test person",
      },
    });
    if (options.scopes?.length) {
      await tx.grant.createMany({
        data: options.scopes.map((scope) => ({ id: newId("grant"), tenantId, principalId: principal.id, scope })),
      });
    }
    const key = await issueApiKey(tx, hashKey, { tenantId, principalId: principal.id, label: "test" });
    return { tenantId, principalId: principal.id, key: key.secret, keyId: key.id };
  });
}

/**
 * Registers an API through the public API as `key`'s principal (which needs
 * `resource_server.create`), with the named scopes, and gives each holder
 * listed its scopes (which needs `grant.create`).
 */
export async function registerApi(
  t: TestBroker,
  key: string,
  options: {
    identifier: string;
    scopes: string[];
    grants?: Record<string, string[]>;
    requireDpop?: boolean;
    maxTokenLifetimeSeconds?: number;
    defaultTokenLifetimeSeconds?: number;
  },
): Promise<{ id: string; principalId: string; identifier: string }> {
  const { resourceServer } = await t.client(ResourceServerService, { key }).createResourceServer({
    identifier: options.identifier,
    displayName: options.identifier,
    scopes: options.scopes.map((name) => ({ name, description: `${name} (test)` })),
    requireDpop: options.requireDpop ?? false,
    ...(options.maxTokenLifetimeSeconds ? { maxTokenLifetime: seconds(options.maxTokenLifetimeSeconds) } : {}),
    ...(options.defaultTokenLifetimeSeconds
      ? { defaultTokenLifetime: seconds(options.defaultTokenLifetimeSeconds) }
      : {}),
  });
  const id = resourceServer?.id ?? "";
  const grants = t.client(GrantService, { key });
  for (const [principalId, scopes] of Object.entries(options.grants ?? {})) {
    for (const scope of scopes) await grants.createGrant({ principalId, scope, resourceServerId: id });
  }
  return { id, principalId: resourceServer?.principalId ?? "", identifier: options.identifier };
}
