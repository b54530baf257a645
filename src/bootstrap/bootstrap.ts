// First start on an empty database: create the operators' tenant, an admin
// person with the elevated grant and every grantable action of this release
// (on every target, for target actions), the public client `aegis login`
// uses, and a one-time API key for the admin. Later starts (and other brokers starting at
// the same moment on a shared database) find the installation row and do
// nothing; claiming that row decides the race.
import { apiKeyHashPurpose, issueApiKey } from "../auth/api-keys.js";
import { elevatedScope } from "../core/caller.js";
import type { BrokerContext } from "../core/context.js";
import { operatorAdminScopes } from "../policy/admin-scopes.js";
import { newId } from "../protocol/ids.js";
import { defaultCliClientId } from "../protocol/well-known.js";

export interface BootstrapResult {
  readonly tenantId: string;
  readonly principalId: string;
  /** The admin API key: shown once, stored only as a keyed hash. */
  readonly credential: string;
}

export async function bootstrap(
  ctx: Pick<BrokerContext, "prisma" | "audit" | "rootKey">,
  grantableActions: readonly string[],
): Promise<BootstrapResult | undefined> {
  if (await ctx.prisma.installation.findUnique({ where: { id: 1 } })) return undefined;
  const hashKey = ctx.rootKey.deriveKey(apiKeyHashPurpose);
  try {
    return await ctx.audit.transaction(
      async (tx) => {
        // ON CONFLICT DO NOTHING: a concurrent bootstrap waits for ours to
        // commit, then claims nothing. Rolling back ours is then all it needs.
        const claimed = await tx.installation.createMany({ data: [{ id: 1 }], skipDuplicates: true });
        if (claimed.count === 0) throw new AlreadyInstalled();
        const tenant = await tx.tenant.create({
          data: { id: newId("tenant"), name: "operators", displayName: "Operators" },
        });
        const principal = await tx.principal.create({
          data: { id: newId("principal"), tenantId: tenant.id, kind: "person", displayName: "Bootstrap admin" },
        });
        await tx.grant.createMany({
          data: operatorAdminScopes(grantableActions).map((scope) => ({
            id: newId("grant"),
            tenantId: tenant.id,
            principalId: principal.id,
            scope,
            grantedBy: "bootstrap",
          })),
        });
        // The public client `aegis login` uses by default, so signing in needs only the server's URL.
        await tx.oAuthClient.create({
          data: {
            id: defaultCliClientId,
            tenantId: tenant.id,
            name: "aegis CLI",
            allowedScopes: operatorAdminScopes(grantableActions)
              .filter((scope) => scope !== elevatedScope)
              .join(" "),
            allowedAudiences: "",
          },
        });
        const key = await issueApiKey(tx, hashKey, {
          tenantId: tenant.id,
          principalId: principal.id,
          label: "bootstrap admin",
        });
        return { tenantId: tenant.id, principalId: principal.id, credential: key.secret, keyId: key.id };
      },
      (result) => ({
        requestId: "bootstrap",
        tenantId: result.tenantId,
        actorId: null,
        client: "broker",
        action: "broker.bootstrap",
        target: `${result.principalId} key ${result.keyId}`,
        outcome: "success",
        reason: "",
      }),
    );
  } catch (error) {
    if (error instanceof AlreadyInstalled) return undefined;
    throw error;
  }
}

class AlreadyInstalled extends Error {}
