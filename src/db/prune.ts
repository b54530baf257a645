// Forgetting rows whose time has passed (replay-guard values, revocation-feed
// entries, ended rate-limit windows), a bounded batch per statement. Under load these tables gain
// thousands of rows a second; one DELETE of a minute's worth would hold the
// embedded database's only session, or the table's locks, for seconds.
// Between batches other work gets its turn.
import { Prisma, type PrismaClient } from "../../gen/prisma/client.js";

/** The tables that expire rows, and their key and expiry columns (constants, never input). */
const expiring = {
  replay_guard: { key: "key", expiry: "expires_at" },
  revocation_event: { key: "id", expiry: "expires_at" },
  rate_limit: { key: "key", expiry: "expires_at" },
} as const;

export type ExpiringTable = keyof typeof expiring;

/** Deletes the rows of `table` that expired before `now`; returns how many. */
export async function pruneExpired(
  prisma: PrismaClient,
  table: ExpiringTable,
  now: Date,
  batchSize = 2_000,
): Promise<number> {
  const { key, expiry } = expiring[table];
  const [name, keyColumn, expiryColumn] = [table, key, expiry].map((identifier) => Prisma.raw(identifier));
  let total = 0;
  for (;;) {
    const deleted = await prisma.$executeRaw`
      DELETE FROM ${name} WHERE ${keyColumn} IN (
        SELECT ${keyColumn} FROM ${name} WHERE ${expiryColumn} < ${now} LIMIT ${batchSize})`;
    total += deleted;
    if (deleted < batchSize) return total;
    await new Promise((resolve) => setImmediate(resolve));
  }
}
