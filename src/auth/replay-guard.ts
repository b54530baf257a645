// Remembers single-use values (DPoP proof `jti`s, assertion `jti`s) until
// they expire, in the database so every broker instance sees them: a proof
// replayed against another instance is refused too. One insert per use;
// ON CONFLICT DO NOTHING tells first use from replay atomically.
import { createHash } from "node:crypto";
import type { PrismaClient } from "../../gen/prisma/client.js";

export interface ReplayGuard {
  /** True the first time `value` is seen in `namespace` before `expiresAt`; false on replay. */
  claim(namespace: string, value: string, expiresAt: Date): Promise<boolean>;
}

export function databaseReplayGuard(prisma: PrismaClient): ReplayGuard & { prune(now: Date): Promise<number> } {
  return {
    async claim(namespace, value, expiresAt) {
      const key = createHash("sha256").update(`${namespace}\0${value}`).digest("base64url");
      const { count } = await prisma.replayGuard.createMany({ data: [{ key, expiresAt }], skipDuplicates: true });
      return count === 1;
    },
    async prune(now) {
      return (await prisma.replayGuard.deleteMany({ where: { expiresAt: { lt: now } } })).count;
    },
  };
}
