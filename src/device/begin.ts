// Beginning a device authorization (RFC 8628 §3.1-3.2): a device code for
// the device, a user code for the person, within what the client may ask.
import { DomainError } from "../core/errors/domain-error.js";
import { parseScopes } from "../policy/scope-checks.js";
import { newId } from "../protocol/ids.js";
import { base62Alphabet, randomText } from "../protocol/random-text.js";
import { formatScope, ScopeSet } from "../protocol/scope.js";
import { audienceOf, catalogueScopes } from "../resource-servers/index.js";
import type { CallSite } from "../tokens/index.js";
import { activeClient, type DeviceDeps, displayUserCode, newUserCode, outcome, sha256 } from "./device-grant.js";

/** Broker scopes the client may ask for, canonical. */
function brokerScopes(client: { allowedScopes: string }, texts: readonly string[]): string[] {
  const scopes = parseScopes("scope", texts, { wildcards: true });
  const allowed = new ScopeSet(client.allowedScopes.split(" ").filter(Boolean));
  const refused = scopes.filter((s) => !allowed.covers(s)).map(formatScope);
  if (refused.length > 0) {
    throw new DomainError(
      "permission_denied",
      "INVALID_SCOPE",
      `scopes not allowed to this client: ${refused.join(" ")}`,
    );
  }
  return scopes.map(formatScope);
}

export async function beginDeviceAuthorization(
  deps: DeviceDeps,
  site: CallSite,
  input: { clientId: string; scopes: readonly string[]; audience: string },
) {
  const client = await activeClient(deps.prisma, input.clientId);
  // A broker-wide client (the developer portal) serves every tenant: with no
  // person signed in yet, a device code could not say whose it is.
  const tenantId = client.tenantId;
  if (tenantId === null) throw outcome.unauthorizedClient(`client ${client.id} has no device flow`);
  const audience = input.audience || deps.config.publicUrl;
  if (audience !== deps.config.publicUrl && !client.allowedAudiences.split(" ").includes(audience)) {
    throw new DomainError(
      "invalid_argument",
      "INVALID_TARGET",
      `audience ${audience.slice(0, 100)} not allowed to this client`,
    );
  }
  const target = await audienceOf(deps, tenantId, audience);
  // A client allowed a resource server may ask for any scope of its
  // catalogue; the person approves what they hold.
  const scopes =
    target.kind === "resource"
      ? catalogueScopes(target.server, input.scopes, "person")
      : brokerScopes(client, input.scopes);
  const deviceCode = randomText(base62Alphabet, 43);
  const { codeSeconds, intervalSeconds } = deps.deviceConfig;
  const expiresAt = new Date(deps.clock.now().getTime() + codeSeconds * 1000);
  // A clash of user codes among live ones is ~1 in 10^8 per pair: try again, twice.
  for (let attempt = 0; ; attempt++) {
    const userCode = newUserCode();
    try {
      const row = await deps.audit.transaction(
        (tx) =>
          tx.deviceAuthorization.create({
            data: {
              id: newId("deviceAuthorization"),
              tenantId,
              clientId: client.id,
              deviceCodeHash: sha256(deviceCode),
              userCode,
              scopes: scopes.join(" "),
              audience,
              intervalSeconds,
              expiresAt,
              requesterAddress: site.clientAddress.slice(0, 100),
              requesterAgent: (site.headers.get("user-agent") ?? "").slice(0, 200),
            },
          }),
        (r) => ({
          requestId: site.requestId,
          tenantId,
          actorId: null,
          client: site.client,
          action: "device.begin",
          target: r.id,
          outcome: "success",
          reason: `client ${client.id} scopes ${r.scopes}`.slice(0, 500),
        }),
      );
      const verificationUri = `${deps.config.publicUrl}/device`;
      return {
        deviceCode,
        userCode: displayUserCode(row.userCode),
        verificationUri,
        verificationUriComplete: `${verificationUri}?user_code=${displayUserCode(row.userCode)}`,
        expiresIn: codeSeconds,
        interval: intervalSeconds,
      };
    } catch (error) {
      if (attempt >= 2 || !String((error as Error).message).includes("user_code")) throw error;
    }
  }
}
