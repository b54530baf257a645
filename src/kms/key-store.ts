// Where keys are read from: the database, through two bounded in-memory
// caches so hot operations make no database round trip and unwrap nothing:
//
// - key rows by id (state, spec, current version, policy), and
// - key objects of unwrapped material by key id and version.
//
// Both drop a key's entries when the revocation feed names it (`kms_key`
// entries: rotated, compromised, deactivated, destroyed, changed), on this
// instance at once after the commit and on the others within a poll
// interval, the bound the broker keeps for token revocations too. Material
// stays wrapped by the root of trust at rest; the context binds the key id,
// version and spec, so a wrapped blob moved to another row does not open.
import type { KeyObject } from "node:crypto";
import type { KmsKey, KmsKeyVersion, Prisma } from "../../gen/prisma/client.js";
import type { BrokerContext } from "../core/context.js";
import { notFound } from "../core/errors/domain-error.js";
import { type RevocationEntry, RevocationFeed } from "../core/revocation-feed.js";
import { isId } from "../protocol/ids.js";
import { keyObjectOf, publicKeyOf, type SpecName } from "./specs.js";

type Ctx = Pick<BrokerContext, "prisma" | "rootOfTrust" | "clock" | "feed">;

/** The root-of-trust context of one version's material. */
export function materialContext(keyId: string, version: number, spec: string): string {
  return `aegis-kms:${keyId}:v${version}:${spec}`;
}

export const notFoundKey = () => notFound("key", "KEY_NOT_FOUND");

/** A small LRU: a Map kept in use order, the oldest entry dropped past `limit`. */
class Bounded<V> {
  readonly #map = new Map<string, V>();
  constructor(readonly limit: number) {}
  get(key: string): V | undefined {
    const value = this.#map.get(key);
    if (value !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, value);
    }
    return value;
  }
  set(key: string, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.limit) this.#map.delete(this.#map.keys().next().value as string);
  }
  deleteWhere(test: (key: string) => boolean): void {
    for (const key of [...this.#map.keys()]) if (test(key)) this.#map.delete(key);
  }
}

export class KeyStore {
  readonly #rows = new Bounded<KmsKey>(10_000);
  readonly #secrets = new Bounded<KeyObject>(2_000);
  readonly #publics = new Bounded<KeyObject>(2_000);
  /** Bumped per key on every invalidation, so a read that raced a change is not cached. */
  readonly #generation = new Map<string, number>();

  constructor(private readonly ctx: Ctx) {}

  /** The key `id` of `tenantId`; other tenants' keys and malformed ids are simply not found. */
  async key(tenantId: string, id: string): Promise<KmsKey> {
    if (!isId("kmsKey", id)) throw notFoundKey();
    let row = this.#rows.get(id);
    if (!row) {
      const generation = this.#generation.get(id) ?? 0;
      row = (await this.ctx.prisma.kmsKey.findUnique({ where: { id } })) ?? undefined;
      if (!row) throw notFoundKey();
      if ((this.#generation.get(id) ?? 0) === generation) this.#rows.set(id, row);
    }
    if (row.tenantId !== tenantId) throw notFoundKey();
    return row;
  }

  /** The secret (AES, HMAC) or private key object of one version, unwrapped once and cached. */
  async secret(key: KmsKey, version: number): Promise<KeyObject> {
    const slot = `${key.id}/${version}`;
    const cached = this.#secrets.get(slot);
    if (cached) return cached;
    const generation = this.#generation.get(key.id) ?? 0;
    const row = await this.#version(key.id, version);
    if (!row.material) throw notFoundKey();
    const material = await this.ctx.rootOfTrust.unwrap(
      Buffer.from(row.material, "base64"),
      materialContext(key.id, version, key.spec),
    );
    const object = keyObjectOf(key.spec as SpecName, material);
    material.fill(0);
    if ((this.#generation.get(key.id) ?? 0) === generation) this.#secrets.set(slot, object);
    return object;
  }

  /** The public key object of an asymmetric key's version. */
  async publicKey(key: KmsKey, version: number): Promise<{ object: KeyObject; pem: string }> {
    const slot = `${key.id}/${version}`;
    const row = await this.#version(key.id, version);
    if (!row.publicKey) throw notFoundKey();
    let object = this.#publics.get(slot);
    if (!object) {
      object = publicKeyOf(row.publicKey);
      this.#publics.set(slot, object);
    }
    return { object, pem: row.publicKey };
  }

  readonly #versionRows = new Bounded<KmsKeyVersion>(4_000);

  async #version(keyId: string, version: number): Promise<KmsKeyVersion> {
    const slot = `${keyId}/${version}`;
    const cached = this.#versionRows.get(slot);
    if (cached) return cached;
    const generation = this.#generation.get(keyId) ?? 0;
    const row = await this.ctx.prisma.kmsKeyVersion.findUnique({ where: { keyId_version: { keyId, version } } });
    if (!row) throw notFoundKey();
    if ((this.#generation.get(keyId) ?? 0) === generation) this.#versionRows.set(slot, row);
    return row;
  }

  /** Drops everything cached of key `id` (this instance). */
  forget(id: string): void {
    this.#generation.set(id, (this.#generation.get(id) ?? 0) + 1);
    this.#rows.deleteWhere((k) => k === id);
    const prefix = `${id}/`;
    this.#secrets.deleteWhere((k) => k.startsWith(prefix));
    this.#publics.deleteWhere((k) => k.startsWith(prefix));
    this.#versionRows.deleteWhere((k) => k.startsWith(prefix));
  }

  /** The feed entry that tells every instance to drop key `id` (published in the changing transaction). */
  changed(id: string): RevocationEntry {
    return { kind: "kms_key", subject: id, expiresAt: new Date(this.ctx.clock.now().getTime() + 120_000) };
  }

  /** Publishes the change in `tx`; call `applied` after the commit. */
  async publish(tx: Prisma.TransactionClient, id: string): Promise<RevocationEntry> {
    const entry = this.changed(id);
    await RevocationFeed.publish(tx, entry);
    return entry;
  }

  /** Applies a committed change on this instance at once (the feed listeners, this store among them). */
  applied(entry: RevocationEntry): void {
    this.ctx.feed.apply(entry);
  }

  onRevocation(entry: RevocationEntry): void {
    if (entry.kind === "kms_key") this.forget(entry.subject);
  }
}
