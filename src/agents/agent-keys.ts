// Public keys of principals: signing keys verify their RFC 7523 assertions
// (a signing key is a full credential of its principal), encryption keys
// receive sealed credentials. Registering either is issuing a credential, so
// it follows policy/credential-issuance.ts: the presented credential must
// cover every grant of the key's principal, the caller's own included; so
// does revoking another principal's key. Only public JWKs of well-known,
// strong kinds are accepted; anything with private parts is refused outright
// (and never stored or echoed).
import { calculateJwkThumbprint, importJWK, type JWK } from "jose";
import type { AgentKey } from "../../gen/prisma/client.js";
import type { AuditBase } from "../core/audit.js";
import type { Caller } from "../core/caller.js";
import type { BrokerContext } from "../core/context.js";
import { DomainError, invalidArgument, notFound } from "../core/errors/domain-error.js";
import { credentialHolderFor } from "../policy/credential-issuance.js";
import { getPrincipal } from "../principals/index.js";
import { isId, newId } from "../protocol/ids.js";
import { hasPrivateKeyMaterial } from "../protocol/jwk.js";

export type KeyUse = AgentKey["use"];

const signingAlgs: Record<string, string[]> = {
  "EC:P-256": ["ES256"],
  "EC:P-384": ["ES384"],
  "EC:P-521": ["ES512"],
  "OKP:Ed25519": ["EdDSA", "Ed25519"],
  RSA: ["PS256", "PS384", "PS512", "RS256"],
};
const encryptionAlgs: Record<string, string[]> = {
  "EC:P-256": ["ECDH-ES+A256KW", "ECDH-ES"],
  "EC:P-384": ["ECDH-ES+A256KW", "ECDH-ES"],
  "OKP:X25519": ["ECDH-ES+A256KW", "ECDH-ES"],
  RSA: ["RSA-OAEP-256"],
};

function bad(description: string): DomainError {
  return invalidArgument([{ field: "jwk_json", description }]);
}

/** Parses and checks a public JWK for `use`; returns it with the algorithm to use. */
export async function parsePublicJwk(
  json: string,
  use: KeyUse,
  requestedAlg: string,
): Promise<{ jwk: JWK; alg: string }> {
  if (json.length > 16_384) throw bad("at most 16 KiB");
  let jwk: JWK;
  try {
    jwk = JSON.parse(json) as JWK;
  } catch {
    throw bad("is not JSON");
  }
  if (typeof jwk !== "object" || jwk === null || Array.isArray(jwk)) throw bad("is not a JWK object");
  if (hasPrivateKeyMaterial(jwk)) throw bad("contains private key material; register the public key only");
  const family = jwk.kty === "RSA" ? "RSA" : `${String(jwk.kty)}:${String(jwk.crv)}`;
  const allowed = (use === "signing" ? signingAlgs : encryptionAlgs)[family];
  if (!allowed) throw bad(`key type ${family} is not accepted for ${use}`);
  if (jwk.kty === "RSA" && Buffer.from(String(jwk.n ?? ""), "base64url").length < 256) {
    throw bad("RSA keys must have at least 2048 bits");
  }
  const alg = requestedAlg || (allowed[0] as string);
  if (!allowed.includes(alg)) {
    throw invalidArgument([{ field: "alg", description: `must be one of ${allowed.join(", ")} for this key` }]);
  }
  try {
    await importJWK({ ...jwk, ext: true }, alg);
  } catch (error) {
    throw bad(`is not a valid key: ${(error as Error).message}`);
  }
  const { kid: _kid, use: _use, alg: _alg, key_ops: _ops, ...members } = jwk;
  return { jwk: members, alg };
}

export async function addAgentKey(
  ctx: Pick<BrokerContext, "audit">,
  caller: Caller,
  auditBase: AuditBase,
  input: { agentId: string; use: KeyUse; jwkJson: string; alg: string },
): Promise<AgentKey> {
  const { jwk, alg } = await parsePublicJwk(input.jwkJson, input.use, input.alg);
  const thumbprint = await calculateJwkThumbprint(jwk, "sha256");
  return ctx.audit.transaction(
    async (tx) => {
      const agent = await credentialHolderFor(tx, caller, input.agentId, `registering a ${input.use} key`);
      if (agent.status === "revoked")
        throw new DomainError("failed_precondition", "AGENT_REVOKED", "the agent is revoked");
      if (await tx.agentKey.findUnique({ where: { principalId_thumbprint: { principalId: agent.id, thumbprint } } })) {
        throw new DomainError(
          "already_exists",
          "KEY_ALREADY_REGISTERED",
          "this key is already registered for the agent",
        );
      }
      const id = newId("agentKey");
      return tx.agentKey.create({
        data: {
          id,
          tenantId: caller.tenantId,
          principalId: agent.id,
          use: input.use,
          alg,
          jwk: { ...jwk, kid: id },
          thumbprint,
        },
      });
    },
    (key) => ({
      ...auditBase,
      action: "agent.key.add",
      target: `${input.agentId} ${key.id}`,
      outcome: "success",
      reason: "",
    }),
  );
}

export async function listAgentKeys(ctx: Pick<BrokerContext, "prisma">, caller: Caller, agentId: string) {
  await getPrincipal(ctx.prisma, caller.tenantId, agentId);
  return ctx.prisma.agentKey.findMany({ where: { principalId: agentId }, orderBy: { createdAt: "desc" } });
}

export async function revokeAgentKey(
  ctx: Pick<BrokerContext, "audit" | "clock">,
  caller: Caller,
  auditBase: AuditBase,
  keyId: string,
): Promise<AgentKey> {
  return ctx.audit.transaction(
    async (tx) => {
      const key = isId("agentKey", keyId)
        ? await tx.agentKey.findFirst({ where: { id: keyId, tenantId: caller.tenantId } })
        : null;
      if (!key) throw notFound("key", "KEY_NOT_FOUND");
      if (key.principalId !== caller.principalId) {
        await credentialHolderFor(tx, caller, key.principalId, "revoking this key");
      }
      if (key.revokedAt) return key;
      return tx.agentKey.update({ where: { id: keyId }, data: { revokedAt: ctx.clock.now() } });
    },
    () => ({ ...auditBase, action: "agent.key.revoke", target: keyId, outcome: "success", reason: "" }),
  );
}
