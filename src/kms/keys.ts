// Key administration: create, read, list, update and the lifecycle
// transitions (activate, deactivate, rotate, compromise, schedule and cancel
// destruction). Each change runs in one transaction that locks the key's row,
// checks the transition against the state machine (lifecycle.ts), writes the
// change and its audit event, and publishes a `kms_key` feed entry so every
// instance drops what it cached of the key.
//
// Rights: the caller needs the action on `key:<id>` (checked before the key
// is looked up, so other tenants' ids answer like missing ones). The creator
// of a key gets the administration rights over it, not the use rights: key
// administrators and key users are separate (the AWS key-policy split).
import type { KmsKey, Prisma } from "../../gen/prisma/client.js";
import type { AuditBase } from "../core/audit.js";
import type { Caller } from "../core/caller.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError, invalidArgument } from "../core/errors/domain-error.js";
import { type Page, pageOf } from "../core/pagination.js";
import type { RevocationEntry } from "../core/revocation-feed.js";
import { endOpenEnrollments } from "../people/index.js";
import { assertTargetAllowed } from "../policy/scope-checks.js";
import { lockPrincipal } from "../principals/index.js";
import { isId, newId } from "../protocol/ids.js";
import { wildcard } from "../protocol/scope.js";
import type { KeyOpMetrics, OpNote } from "./key-audit.js";
import { observed } from "./key-audit.js";
import { type KeyStore, materialContext, notFoundKey } from "./key-store.js";
import {
  assertTransition,
  effectiveState,
  type KeyState,
  type StoredState,
  stateAfterCancel,
  type Transition,
  upper,
} from "./lifecycle.js";
import {
  type GeneratedMaterial,
  generateMaterial,
  impliedUsage,
  type SpecName,
  specs,
  type UsageName,
} from "./specs.js";

export type KmsCtx = Pick<BrokerContext, "prisma" | "audit" | "clock" | "config" | "feed" | "rootOfTrust" | "log">;

/** The rights the creator of a key receives on it. */
export const keyAdminActions = [
  "kms.key.read",
  "kms.key.update",
  "kms.key.activate",
  "kms.key.deactivate",
  "kms.key.rotate",
  "kms.key.compromise",
  "kms.key.destroy",
] as const;

const minRotationSeconds = 86_400;

export interface CreateKeyInput {
  readonly spec: SpecName;
  readonly usage: UsageName | undefined;
  readonly description: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly activate: boolean;
  readonly requireDpop: boolean;
  readonly rotationPeriodSeconds: number;
}

export interface UpdateKeyInput {
  readonly description?: string | undefined;
  readonly labels?: Readonly<Record<string, string>> | undefined;
  readonly requireDpop?: boolean | undefined;
  readonly rotationPeriodSeconds?: number | undefined;
  readonly minDecryptionVersion?: number | undefined;
}

export interface KeyFilter {
  readonly state?: KeyState | undefined;
  readonly spec?: SpecName | undefined;
  /** `name=value`. */
  readonly label?: string | undefined;
}

function checkRotation(field: string, seconds: number): void {
  if (seconds !== 0 && seconds < minRotationSeconds) {
    throw invalidArgument([{ field, description: `must be 0s or at least ${minRotationSeconds}s (one day)` }]);
  }
}

function nextRotation(now: Date, seconds: number): Date | null {
  return seconds > 0 ? new Date(now.getTime() + seconds * 1000) : null;
}

export function assertKeyRight(caller: Caller, action: string, keyId: string): void {
  // A malformed id cannot be a selector value; it is simply not found.
  if (!isId("kmsKey", keyId)) throw notFoundKey();
  assertTargetAllowed(caller, { action, selector: { key: keyId } });
}

/** Wraps fresh material for `version` of key `id` (the root of trust binds id, version and spec). */
async function wrappedVersion(ctx: KmsCtx, id: string, version: number, spec: SpecName, given?: GeneratedMaterial) {
  const generated = given ?? (await generateMaterial(spec));
  const material = await ctx.rootOfTrust.wrap(generated.material, materialContext(id, version, spec));
  generated.material.fill(0);
  return { material: Buffer.from(material).toString("base64"), publicKey: generated.publicKeyPem ?? null };
}

export class KeyAdmin {
  constructor(
    private readonly ctx: KmsCtx,
    private readonly store: KeyStore,
    private readonly metrics: KeyOpMetrics,
  ) {}

  async create(caller: Caller, base: AuditBase, input: CreateKeyInput): Promise<KmsKey> {
    const id = newId("kmsKey");
    return observed(
      this.ctx,
      this.metrics,
      { base, action: "kms.key.create", operation: "create", keyId: id, auditedInTransaction: true },
      async (note) => {
        note.version = 1;
        note.detail = `spec=${input.spec}`;
        const info = specs[input.spec];
        const usage = input.usage ?? impliedUsage(input.spec);
        if (!usage || !info.usages.includes(usage)) {
          throw invalidArgument([
            {
              field: "usage",
              description: usage
                ? `${upper(usage)} does not fit key spec ${upper(input.spec)} (allowed: ${info.usages.map(upper).join(", ")})`
                : `key spec ${upper(input.spec)} needs a usage: ${info.usages.map(upper).join(" or ")}`,
            },
          ]);
        }
        checkRotation("rotation_period", input.rotationPeriodSeconds);
        const version = await wrappedVersion(this.ctx, id, 1, input.spec);
        const now = this.ctx.clock.now();
        const changed: RevocationEntry = {
          kind: "principal",
          subject: caller.principalId,
          expiresAt: new Date(now.getTime() + 120_000),
        };
        const key = await this.ctx.audit.transaction(
          async (tx) => {
            const created = await tx.kmsKey.create({
              data: {
                id,
                tenantId: caller.tenantId,
                spec: input.spec,
                usage,
                state: input.activate ? "active" : "pre_active",
                description: input.description,
                labels: input.labels,
                currentVersion: 1,
                requireDpop: input.requireDpop,
                rotationPeriodSeconds: input.rotationPeriodSeconds,
                nextRotationAt: nextRotation(now, input.rotationPeriodSeconds),
                createdBy: caller.principalId,
                versions: { create: { version: 1, ...version } },
              },
            });
            // The creator's administration rights; their cached grants are dropped
            // everywhere, and their open enrollment codes end, as for any grant given.
            await lockPrincipal(tx, caller.principalId);
            await endOpenEnrollments(tx, caller.principalId, now);
            await tx.grant.createMany({
              data: keyAdminActions.map((action) => ({
                id: newId("grant"),
                tenantId: caller.tenantId,
                principalId: caller.principalId,
                scope: `${action}:key:${id}`,
                grantedBy: caller.principalId,
              })),
              skipDuplicates: true,
            });
            await tx.revocationEvent.create({
              data: { kind: changed.kind, subject: changed.subject, expiresAt: changed.expiresAt },
            });
            return created;
          },
          () => ({
            ...base,
            action: "kms.key.create",
            target: `${id} v1`,
            outcome: "success",
            reason: `op=create spec=${input.spec} usage=${usage}${input.activate ? " state=active" : ""}`,
          }),
        );
        this.ctx.feed.apply(changed);
        return key;
      },
    );
  }

  async get(caller: Caller, keyId: string): Promise<KmsKey> {
    assertKeyRight(caller, "kms.key.read", keyId);
    const key = await this.ctx.prisma.kmsKey.findFirst({ where: { id: keyId, tenantId: caller.tenantId } });
    if (!key) throw notFoundKey();
    return key;
  }

  async list(caller: Caller, filter: KeyFilter, page: Page): Promise<{ items: KmsKey[]; nextPageToken: string }> {
    const held = caller.scopes.scopes.filter((s) => s.action === "kms.key.read" && s.selector);
    const ids = held.some((s) => s.selector?.key === wildcard) ? undefined : held.map((s) => s.selector?.key as string);
    const now = this.ctx.clock.now();
    const where: Prisma.KmsKeyWhereInput = {
      tenantId: caller.tenantId,
      ...(ids ? { id: { in: ids } } : {}),
      ...(page.after ? { AND: [{ id: { gt: page.after } }] } : {}),
      ...(filter.spec ? { spec: filter.spec } : {}),
      ...(filter.state ? stateWhere(filter.state, now) : {}),
    };
    if (filter.label) {
      const at = filter.label.indexOf("=");
      if (at < 1) throw invalidArgument([{ field: "label", description: "must be name=value" }]);
      where.labels = { path: [filter.label.slice(0, at)], equals: filter.label.slice(at + 1) };
    }
    const rows = await this.ctx.prisma.kmsKey.findMany({ where, orderBy: { id: "asc" }, take: page.size + 1 });
    return pageOf(rows, page, (k) => k.id);
  }

  async versions(caller: Caller, keyId: string) {
    const key = await this.get(caller, keyId);
    const rows = await this.ctx.prisma.kmsKeyVersion.findMany({
      where: { keyId },
      orderBy: { version: "desc" },
      select: { version: true, createdAt: true, material: true },
    });
    return {
      key,
      versions: rows.map((v) => ({
        version: v.version,
        createdAt: v.createdAt,
        current: v.version === key.currentVersion,
        usable: v.material !== null && v.version >= key.minDecryptionVersion,
      })),
    };
  }

  /**
   * One change of a key under its row lock: the transition is checked
   * against the state it is in now (not a cached one), the change and its
   * audit event commit together, and every instance drops the key.
   */
  async #change(
    caller: Caller,
    base: AuditBase,
    keyId: string,
    action: string,
    transition: Transition,
    change: (
      key: KmsKey,
      state: KeyState,
      now: Date,
      tx: Prisma.TransactionClient,
      note: OpNote,
    ) => Promise<Prisma.KmsKeyUpdateInput>,
    reason: (key: KmsKey) => string = () => "",
  ): Promise<KmsKey> {
    const operation = transition === "update" ? "update" : transition;
    return observed(
      this.ctx,
      this.metrics,
      { base, action, operation, keyId, auditedInTransaction: true },
      async (note) => {
        assertKeyRight(caller, action, keyId);
        let entry: RevocationEntry | undefined;
        const key = await this.ctx.audit.transaction(
          async (tx) => {
            await tx.$queryRaw`SELECT id FROM kms_key WHERE id = ${keyId} FOR UPDATE`;
            const current = await tx.kmsKey.findFirst({ where: { id: keyId, tenantId: caller.tenantId } });
            if (!current) throw notFoundKey();
            note.version = current.currentVersion;
            const now = this.ctx.clock.now();
            const state = effectiveState(current, now);
            assertTransition(state, transition);
            const data = await change(current, state, now, tx, note);
            const updated = await tx.kmsKey.update({ where: { id: keyId }, data });
            entry = await this.store.publish(tx, keyId);
            note.version = updated.currentVersion;
            return updated;
          },
          (k) => ({
            ...base,
            action,
            target: `${k.id} v${k.currentVersion}`,
            outcome: "success",
            reason: [`op=${operation}`, `state=${effectiveState(k, this.ctx.clock.now())}`, reason(k)]
              .filter(Boolean)
              .join(" ")
              .slice(0, 500),
          }),
        );
        if (entry) this.store.applied(entry);
        return key;
      },
    );
  }

  update(caller: Caller, base: AuditBase, keyId: string, input: UpdateKeyInput): Promise<KmsKey> {
    return this.#change(caller, base, keyId, "kms.key.update", "update", async (key, _state, now) => {
      if (input.rotationPeriodSeconds !== undefined) checkRotation("rotation_period", input.rotationPeriodSeconds);
      const min = input.minDecryptionVersion;
      if (min !== undefined && (min > key.currentVersion || min < key.minDecryptionVersion)) {
        throw invalidArgument([
          {
            field: "min_decryption_version",
            description: `must be between ${key.minDecryptionVersion} (never lowered) and ${key.currentVersion} (the current version)`,
          },
        ]);
      }
      return {
        ...(input.description !== undefined ? { description: input.description } : {}),
        ...(input.labels !== undefined ? { labels: input.labels } : {}),
        ...(input.requireDpop !== undefined ? { requireDpop: input.requireDpop } : {}),
        ...(input.rotationPeriodSeconds !== undefined
          ? {
              rotationPeriodSeconds: input.rotationPeriodSeconds,
              nextRotationAt: nextRotation(now, input.rotationPeriodSeconds),
            }
          : {}),
        ...(min !== undefined ? { minDecryptionVersion: min } : {}),
      };
    });
  }

  activate(caller: Caller, base: AuditBase, keyId: string): Promise<KmsKey> {
    return this.#change(caller, base, keyId, "kms.key.activate", "activate", async () => ({ state: "active" }));
  }

  deactivate(caller: Caller, base: AuditBase, keyId: string): Promise<KmsKey> {
    return this.#change(caller, base, keyId, "kms.key.deactivate", "deactivate", async () => ({
      state: "deactivated",
    }));
  }

  compromise(caller: Caller, base: AuditBase, keyId: string, why: string): Promise<KmsKey> {
    return this.#change(
      caller,
      base,
      keyId,
      "kms.key.compromise",
      "compromise",
      async (_key, _state, now) => ({ state: "compromised", compromisedAt: now }),
      () => `severity=CRITICAL${why ? ` why=${JSON.stringify(why)}` : ""}`,
    );
  }

  async rotate(caller: Caller, base: AuditBase, keyId: string): Promise<KmsKey> {
    // New material is generated before the row is locked (an RSA key takes
    // a while) and wrapped under the lock, once the version number is known.
    let generated: GeneratedMaterial | undefined;
    if (isId("kmsKey", keyId) && caller.scopes.covers({ action: "kms.key.rotate", selector: { key: keyId } })) {
      const known = await this.store.key(caller.tenantId, keyId).catch(() => undefined);
      if (known) generated = await generateMaterial(known.spec as SpecName);
    }
    return this.#change(caller, base, keyId, "kms.key.rotate", "rotate", (key, _state, now, tx) =>
      addVersion(this.ctx, tx, key, now, generated),
    );
  }

  /** `waitingSeconds`: 30 days when undefined; never below the configured minimum. */
  scheduleDestruction(
    caller: Caller,
    base: AuditBase,
    keyId: string,
    waitingSeconds: number | undefined,
  ): Promise<KmsKey> {
    const minimum = this.ctx.config.kmsMinDestructionDays;
    const waiting = waitingSeconds ?? 30 * 86_400;
    if (waiting < minimum * 86_400 || waiting > 30 * 86_400) {
      throw invalidArgument([{ field: "waiting_period", description: `must be between ${minimum} and 30 days` }]);
    }
    return this.#change(
      caller,
      base,
      keyId,
      "kms.key.destroy",
      "schedule_destruction",
      async (_key, _state, now) => ({ destroyAt: new Date(now.getTime() + waiting * 1000) }),
      (k) => `destroy_at=${k.destroyAt?.toISOString()}`,
    );
  }

  cancelDestruction(caller: Caller, base: AuditBase, keyId: string): Promise<KmsKey> {
    return this.#change(caller, base, keyId, "kms.key.destroy", "cancel_destruction", async (key) => ({
      destroyAt: null,
      state: stateAfterCancel(key.state as StoredState),
    }));
  }
}

/** A new version of `key` with fresh material, made current (the caller holds the row lock). */
export async function addVersion(
  ctx: KmsCtx,
  tx: Prisma.TransactionClient,
  key: KmsKey,
  now: Date,
  generated?: GeneratedMaterial,
): Promise<Prisma.KmsKeyUpdateInput> {
  const version = key.currentVersion + 1;
  const material = await wrappedVersion(ctx, key.id, version, key.spec as SpecName, generated);
  await tx.kmsKeyVersion.create({ data: { keyId: key.id, version, ...material } });
  return { currentVersion: version, nextRotationAt: nextRotation(now, key.rotationPeriodSeconds) };
}

function stateWhere(state: KeyState, now: Date): Prisma.KmsKeyWhereInput {
  if (state === "destroyed") return { OR: [{ destroyedAt: { not: null } }, { destroyAt: { lte: now } }] };
  if (state === "destruction_pending") return { destroyAt: { gt: now }, destroyedAt: null };
  return { state, destroyAt: null };
}

/** The failure of a key whose spec cannot do `operation`. */
export function specMismatch(key: KmsKey, what: string): DomainError {
  const message = `${what} does not fit key spec ${upper(key.spec)} (usage ${upper(key.usage)})`;
  return new DomainError("failed_precondition", "KEY_SPEC_MISMATCH", message, {
    metadata: { spec: upper(key.spec), usage: upper(key.usage) },
    detail: message,
  });
}
