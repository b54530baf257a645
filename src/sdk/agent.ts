// The agent side: mint a DPoP-bound broker token with an API key, then
// redeem a lease and open the secret locally. Plain fetch on the Connect
// protocol (JSON), so an agent needs nothing but this module and jose.
import { fromBinary } from "@bufbuild/protobuf";
import type { JWK } from "jose";
import { ErrorInfoSchema } from "../../gen/proto/google/rpc/error_details_pb.js";
import { createDpopProof } from "./dpop-proof.js";
import { openSealedCredential } from "./sealed-credential.js";

/** A refusal from the broker: the Connect error code and the stable Aegis reason. */
export class AegisCallError extends Error {
  override name = "AegisCallError";
  constructor(
    readonly code: string,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export interface AgentCredentials {
  readonly brokerUrl: string;
  /** The agent's DPoP key pair as a private JWK (ES256); every token is bound to it. */
  readonly dpopKey: JWK;
}

/** The stable reason in a Connect error's `google.rpc.ErrorInfo`, if there is one. */
function reasonOf(details: unknown): string {
  const detail = (Array.isArray(details) ? details : []).find(
    (d: { type?: string }) => d.type === ErrorInfoSchema.typeName,
  ) as { value?: string } | undefined;
  if (!detail?.value) return "";
  return fromBinary(ErrorInfoSchema, Buffer.from(detail.value, "base64")).reason;
}

/** One Connect unary call with a fresh DPoP proof; answers one server-nonce challenge. */
async function call<T>(
  agent: AgentCredentials,
  method: string,
  body: object,
  auth: { bearer: string } | { dpopToken: string },
): Promise<T> {
  const url = `${agent.brokerUrl.replace(/\/$/, "")}/${method}`;
  const token = "dpopToken" in auth ? auth.dpopToken : undefined;
  let nonce: string | undefined;
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: token ? `DPoP ${token}` : `Bearer ${"bearer" in auth ? auth.bearer : ""}`,
        dpop: await createDpopProof(agent.dpopKey, {
          method: "POST",
          url,
          ...(token ? { accessToken: token } : {}),
          ...(nonce ? { nonce } : {}),
        }),
      },
      body: JSON.stringify(body),
    });
    const json = (await response.json()) as Record<string, unknown>;
    if (response.ok) return json as T;
    const reason = reasonOf(json.details);
    nonce = response.headers.get("dpop-nonce") ?? undefined;
    if (reason === "USE_DPOP_NONCE" && nonce && attempt === 0) continue;
    throw new AegisCallError(String(json.code ?? response.status), reason, String(json.message ?? "call failed"));
  }
}

/** Mints a broker token bound to the agent's DPoP key. */
export async function mintAgentToken(
  agent: AgentCredentials,
  apiKey: string,
  request: { scopes: readonly string[]; audience?: string; lifetimeSeconds?: number },
): Promise<string> {
  const minted = await call<{ accessToken: string }>(
    agent,
    "aegis.token.v1.TokenService/MintToken",
    {
      audience: request.audience ?? agent.brokerUrl,
      scopes: request.scopes,
      // A google.protobuf.Duration in its JSON form.
      ...(request.lifetimeSeconds ? { lifetime: `${request.lifetimeSeconds}s` } : {}),
    },
    { bearer: apiKey },
  );
  return minted.accessToken;
}

/** Redeems one use of a lease and opens the secret with the agent's encryption key, locally. */
export async function redeemLease(
  agent: AgentCredentials,
  accessToken: string,
  leaseId: string,
  encryptionKey: JWK,
): Promise<{ secret: string; remainingUses: number; keyId: string; credentialVersion: number }> {
  const redeemed = await call<{ sealedJwe: string; keyId: string; remainingUses?: number; credentialVersion?: number }>(
    agent,
    "aegis.lease.v1.LeaseService/RedeemLease",
    { leaseId },
    { dpopToken: accessToken },
  );
  return {
    secret: await openSealedCredential(redeemed.sealedJwe, encryptionKey),
    remainingUses: redeemed.remainingUses ?? 0,
    keyId: redeemed.keyId,
    credentialVersion: redeemed.credentialVersion ?? 0,
  };
}
