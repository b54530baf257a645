// Remembers single-use values (DPoP proof `jti`s, assertion `jti`s) until
// they expire, in the database so every broker instance sees them: a proof
// replayed against another instance is refused too.
//
// Claims arriving together (group commit) share one
// `INSERT … ON CONFLICT DO NOTHING RETURNING key`; a claim wins when its row
// comes back. Within a batch the first claim of a value wins and any repeat
// loses, so a replay racing its original still gets exactly one success.
import { createHash } from "node:crypto";
import { Prisma, type PrismaClient } from "../../gen/prisma/client.js";
import { GroupCommit } from "../db/group-commit.js";
import { pruneExpired } from "../db/prune.js";

export interface ReplayGuard {
  /** True the first time `value` is seen in `namespace` before `expiresAt`; false on replay. */
  claim(namespace: string, value: string, expiresAt: Date): Promise<boolean>;
}

interface Claim {
  readonly key: string;
  readonly expiresAt: Date;
}

export function databaseReplayGuard(prisma: PrismaClient): ReplayGuard & { prune(now: Date): Promise<number> } {
  const claims = new GroupCommit<Claim, boolean>(async (batch) => {
    const firstOfKey = new Map<string, Claim>();
    for (const claim of batch) if (!firstOfKey.has(claim.key)) firstOfKey.set(claim.key, claim);
    const values = [...firstOfKey.values()].map((c) => Prisma.sql`(${c.key}, ${c.expiresAt})`);
    const inserted = await prisma.$queryRaw<{ key: string }[]>`
      INSERT INTO replay_guard (key, expires_at) VALUES ${Prisma.join(values)}
      ON CONFLICT (key) DO NOTHING RETURNING key`;
    const fresh = new Set(inserted.map((row) => row.key));
    return batch.map((claim) => firstOfKey.get(claim.key) === claim && fresh.has(claim.key));
  });

  return {
    claim(namespace, value, expiresAt) {
      const key = createHash("sha256").update(`${namespace}\0${value}`).digest("base64url");
      return claims.submit({ key, expiresAt });
    },
    prune: (now) => pruneExpired(prisma, "replay_guard", now),
  };
}
