// Remembers single-use values (DPoP proof `jti`s, assertion `jti`s) until
// they expire, in the database so every broker instance sees them: a proof
// replayed against another instance is refused too.
//
// Claims arriving together (group commit) share one
// `INSERT … ON CONFLICT DO NOTHING RETURNING key`, sent straight to the
// driver (a hot path: see db/database.ts); a claim wins when its row comes
// back. Within a batch the first claim of a value wins and any repeat
// loses, so a replay racing its original still gets exactly one success.
import { createHash } from "node:crypto";
import type { Database } from "../db/database.js";
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

export function databaseReplayGuard(
  database: Pick<Database, "prisma" | "sql">,
): ReplayGuard & { prune(now: Date): Promise<number> } {
  const claims = new GroupCommit<Claim, boolean>(async (batch) => {
    const firstOfKey = new Map<string, Claim>();
    for (const claim of batch) if (!firstOfKey.has(claim.key)) firstOfKey.set(claim.key, claim);
    const claims = [...firstOfKey.values()];
    const inserted = await database.sql.query<{ key: string }>(
      `INSERT INTO replay_guard (key, expires_at) SELECT * FROM unnest($1::text[], $2::timestamptz[])
       ON CONFLICT (key) DO NOTHING RETURNING key`,
      [claims.map((c) => c.key), claims.map((c) => c.expiresAt.toISOString())],
    );
    const fresh = new Set(inserted.map((row) => row.key));
    return batch.map((claim) => firstOfKey.get(claim.key) === claim && fresh.has(claim.key));
  });

  return {
    claim(namespace, value, expiresAt) {
      const key = createHash("sha256").update(`${namespace}\0${value}`).digest("base64url");
      return claims.submit({ key, expiresAt });
    },
    prune: (now) => pruneExpired(database.prisma, "replay_guard", now),
  };
}
