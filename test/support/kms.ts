// KMS fixtures: a KeyService client for an actor, keys created (and
// activated) in one call, and readers of the KMS's rows and audit events.
import type { Client } from "@connectrpc/connect";
import {
  EncryptionAlgorithm,
  KeyService,
  KeySpec,
  KeyUsage,
  MacAlgorithm,
  SigningAlgorithm,
} from "../../gen/proto/aegis/kms/v1/kms_pb.js";
import type { TestBroker } from "./broker.js";

export { EncryptionAlgorithm, KeyService, KeySpec, KeyUsage, MacAlgorithm, SigningAlgorithm };

/** Every use right on every key (`*` in a grant), and every administration right. */
export const kmsUseScopes = [
  "kms.sign:key:*",
  "kms.verify:key:*",
  "kms.mac.generate:key:*",
  "kms.mac.verify:key:*",
  "kms.encrypt:key:*",
  "kms.decrypt:key:*",
  "kms.data_key.generate:key:*",
  "kms.wrap:key:*",
  "kms.unwrap:key:*",
  "kms.reencrypt:key:*",
  "kms.public_key.read:key:*",
];
export const kmsAdminScopes = [
  "kms.key.create",
  "kms.key.read:key:*",
  "kms.key.update:key:*",
  "kms.key.activate:key:*",
  "kms.key.deactivate:key:*",
  "kms.key.rotate:key:*",
  "kms.key.compromise:key:*",
  "kms.key.destroy:key:*",
];

export type KeyClient = Client<typeof KeyService>;

/** The usage a spec needs named (RSA) or implies. */
export function usageFor(spec: KeySpec, sign = true): KeyUsage {
  if (spec >= KeySpec.RSA_2048 && spec <= KeySpec.RSA_4096) {
    return sign ? KeyUsage.SIGN_VERIFY : KeyUsage.ENCRYPT_DECRYPT;
  }
  return KeyUsage.UNSPECIFIED;
}

/** Creates an active key of `spec` (RSA: for signing unless `sign` is false) and returns its id. */
export async function activeKey(
  keys: KeyClient,
  spec: KeySpec,
  options: { sign?: boolean; requireDpop?: boolean; labels?: Record<string, string> } = {},
): Promise<string> {
  const { key } = await keys.createKey({
    spec,
    usage: usageFor(spec, options.sign ?? true),
    activate: true,
    requireDpop: options.requireDpop ?? false,
    labels: options.labels ?? {},
  });
  return key?.id ?? "";
}

/** The audit events about key `keyId`, oldest first. */
export function keyEvents(t: TestBroker, keyId: string) {
  return t.db.database.prisma.auditEvent.findMany({
    where: { target: { startsWith: keyId } },
    orderBy: { seq: "asc" },
  });
}
