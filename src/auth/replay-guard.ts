// Remembers single-use values (DPoP proof `jti`s, assertion `jti`s) until
// they expire, in the database so every broker instance sees them: a proof
// replayed against another instance is refused too.
//
// Claims arriving in the same event-loop turn share one
// `INSERT … ON CONFLICT DO NOTHING RETURNING key`; a claim wins when its row
// comes back. Within a batch the first claim of a value wins and any repeat
// loses, so a replay racing its original still gets exactly one success.
import { createHash } from "node:crypto";
import type { PrismaClient } from "../../gen/prisma/client.js";

export interface ReplayGuard {
  /** True the first time `value` is seen in `namespace` before `expiresAt`; false on replay. */
  claim(namespace: string, value: string, expiresAt: Date): Promise<boolean>;
}

interface Pending {
  readonly key: string;
  readonly expiresAt: Date;
  readonly resolve: (first: boolean) => void;
  readonly reject: (error: unknown) => void;
}

export function databaseReplayGuard(prisma: PrismaClient): ReplayGuard & { prune(now: Date): Promise<number> } {
  let queue: Pending[] = [];
  let scheduled = false;

  const flush = async () => {
    scheduled = false;
    const batch = queue;
    queue = [];
    const firstOfKey = new Map<string, Pending>();
    for (const pending of batch) if (!firstOfKey.has(pending.key)) firstOfKey.set(pending.key, pending);
    try {
      const inserted = await prisma.replayGuard.createManyAndReturn({
        data: [...firstOfKey.values()].map(({ key, expiresAt }) => ({ key, expiresAt })),
        skipDuplicates: true,
        select: { key: true },
      });
      const fresh = new Set(inserted.map((row) => row.key));
      for (const pending of batch) pending.resolve(firstOfKey.get(pending.key) === pending && fresh.has(pending.key));
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    }
  };

  return {
    claim(namespace, value, expiresAt) {
      const key = createHash("sha256").update(`${namespace}\0${value}`).digest("base64url");
      return new Promise((resolve, reject) => {
        queue.push({ key, expiresAt, resolve, reject });
        if (!scheduled) {
          scheduled = true;
          setImmediate(() => void flush());
        }
      });
    },
    async prune(now) {
      return (await prisma.replayGuard.deleteMany({ where: { expiresAt: { lt: now } } })).count;
    },
  };
}
