// The KMS's periodic work, on every instance (each step is a conditional
// change, so two instances doing it at once do it once):
//
// - destruction: keys whose scheduled destruction time has passed lose their
//   material for good (every version's wrapped blob is emptied); the key row,
//   its versions' numbers and the audit trail remain, and the id is never
//   reused. Until the job runs such a key already refuses everything (its
//   effective state is DESTROYED from the moment the time passes).
// - rotation: keys with a rotation period whose next rotation is due get a
//   new version.
import type { PeriodicJob } from "../core/module.js";
import type { KeyStore } from "./key-store.js";
import { addVersion, type KmsCtx } from "./keys.js";
import { effectiveState } from "./lifecycle.js";
import { generateMaterial, type SpecName } from "./specs.js";

const batch = 100;
/** As the audit trail's own transactions: the embedded database runs one at a time. */
const transactionOptions = { maxWait: 10_000, timeout: 15_000 } as const;

/** Destroys the material of every key whose destruction is due; returns how many. */
export async function destroyDueKeys(ctx: KmsCtx, store: KeyStore, now: Date): Promise<number> {
  const due = await ctx.prisma.kmsKey.findMany({
    where: { destroyAt: { lte: now }, destroyedAt: null },
    take: batch,
    select: { id: true, tenantId: true, currentVersion: true },
  });
  let destroyed = 0;
  for (const key of due) {
    const entry = await ctx.prisma.$transaction(async (tx) => {
      const claimed = await tx.kmsKey.updateMany({
        where: { id: key.id, destroyAt: { lte: now }, destroyedAt: null },
        data: { destroyedAt: now, nextRotationAt: null },
      });
      if (claimed.count === 0) return undefined;
      await tx.kmsKeyVersion.updateMany({ where: { keyId: key.id }, data: { material: null } });
      await ctx.audit.appendInTransaction(tx, [
        {
          requestId: "kms-destruction-job",
          tenantId: key.tenantId,
          actorId: null,
          client: "broker",
          action: "kms.key.destroy",
          target: `${key.id} v${key.currentVersion}`,
          outcome: "success",
          reason: "op=destroy material destroyed (scheduled destruction passed)",
        },
      ]);
      return store.publish(tx, key.id);
    }, transactionOptions);
    if (entry) {
      ctx.audit.notify();
      store.applied(entry);
      destroyed++;
    }
  }
  return destroyed;
}

/** Rotates every active or deactivated key whose rotation is due; returns how many. */
export async function rotateDueKeys(ctx: KmsCtx, store: KeyStore, now: Date): Promise<number> {
  const due = await ctx.prisma.kmsKey.findMany({
    where: { nextRotationAt: { lte: now }, destroyAt: null, state: { in: ["active", "deactivated"] } },
    take: batch,
  });
  let rotated = 0;
  for (const candidate of due) {
    const generated = await generateMaterial(candidate.spec as SpecName);
    const entry = await ctx.prisma.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT id FROM kms_key WHERE id = ${candidate.id} FOR UPDATE`;
      const key = await tx.kmsKey.findUnique({ where: { id: candidate.id } });
      const state = key && effectiveState(key, now);
      if (!key?.nextRotationAt || key.nextRotationAt > now || (state !== "active" && state !== "deactivated")) {
        return undefined;
      }
      const data = await addVersion(ctx, tx, key, now, generated);
      const updated = await tx.kmsKey.update({ where: { id: key.id }, data });
      await ctx.audit.appendInTransaction(tx, [
        {
          requestId: "kms-rotation-job",
          tenantId: key.tenantId,
          actorId: null,
          client: "broker",
          action: "kms.key.rotate",
          target: `${key.id} v${updated.currentVersion}`,
          outcome: "success",
          reason: "op=rotate automatic",
        },
      ]);
      return store.publish(tx, key.id);
    }, transactionOptions);
    if (entry) {
      ctx.audit.notify();
      store.applied(entry);
      rotated++;
    }
  }
  return rotated;
}

export function kmsJobs(ctx: KmsCtx, store: KeyStore, everyMs: number): PeriodicJob[] {
  return [
    { name: "kms key destruction", everyMs, run: (now) => destroyDueKeys(ctx, store, now) },
    { name: "kms key rotation", everyMs, run: (now) => rotateDueKeys(ctx, store, now) },
  ];
}
