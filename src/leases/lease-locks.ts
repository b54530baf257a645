// Ending many leases at once (credential deleted, holder suspended or
// revoked) locks their rows in id order first: the order redeem batches use
// (redeem.ts), so the two can never deadlock on each other.
import type { Prisma } from "../../gen/prisma/client.js";

export async function endActiveLeases(
  tx: Prisma.TransactionClient,
  of: { readonly credentialId: string } | { readonly holderId: string },
  reason: string,
  now: Date,
): Promise<void> {
  if ("credentialId" in of) {
    await tx.$queryRaw`SELECT id FROM lease WHERE credential_id = ${of.credentialId} AND state = 'active' ORDER BY id FOR UPDATE`;
  } else {
    await tx.$queryRaw`SELECT id FROM lease WHERE holder_id = ${of.holderId} AND state = 'active' ORDER BY id FOR UPDATE`;
  }
  await tx.lease.updateMany({
    where: { ...of, state: "active" },
    data: { state: "revoked", endedAt: now, endReason: reason },
  });
}
