// Fixtures that build the actors a test needs in one call, through the same
// domain code the broker uses (a tenant, a principal with grants and a key).
import { apiKeyHashPurpose, issueApiKey } from "../../src/auth/api-keys.js";
import type { PrincipalKind } from "../../src/core/caller.js";
import { RootKey } from "../../src/crypto/root-key.js";
import { newId } from "../../src/protocol/ids.js";
import type { TestBroker } from "./broker.js";

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
