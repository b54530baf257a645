// Agents as they really run: an API key, a DPoP key, a DPoP-bound broker
// token, an X25519 encryption key pair, and clients that put a fresh proof
// on every call (RFC 9449 §7.1), the way the SDK and CLI do.
import type { RequestOptions } from "node:http";
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import { AgentService, KeyUse } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { ApiKeyService } from "../../gen/proto/aegis/apikey/v1/apikey_pb.js";
import { TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import type { TestBroker } from "./broker.js";
import { createDpopKey, type DpopKey } from "./dpop.js";

export interface EncryptionKey {
  readonly kid: string;
  readonly publicJwk: JWK;
  readonly privateJwk: JWK;
}

/** Generates an X25519 (or P-256) key pair and registers its public half for `principalId`. */
export async function registerEncryptionKey(
  t: TestBroker,
  key: string,
  principalId: string,
  crv: "X25519" | "P-256" = "X25519",
): Promise<EncryptionKey> {
  const pair = await generateKeyPair("ECDH-ES+A256KW", { crv, extractable: true });
  const publicJwk = await exportJWK(pair.publicKey);
  const added = await t.client(AgentService, { key }).addAgentKey({
    agentId: principalId,
    use: KeyUse.ENCRYPTION,
    jwkJson: JSON.stringify(publicJwk),
  });
  const kid = added.key?.id ?? "";
  return { kid, publicJwk: { ...publicJwk, kid }, privateJwk: await exportJWK(pair.privateKey) };
}

/** The broker's public base URL: DPoP `htu` and token audience use it, not the address dialled. */
export function publicBase(t: TestBroker): string {
  return t.config.publicUrlGiven ? t.config.publicUrl : t.broker.url;
}

/** Mints a DPoP-bound broker token with an API key. */
export async function mintDpopToken(t: TestBroker, apiKey: string, dpop: DpopKey, scopes: string[]): Promise<string> {
  const url = `${publicBase(t)}/${TokenService.typeName}/MintToken`;
  const minted = await t
    .client(TokenService, { key: apiKey })
    .mintToken({ audience: publicBase(t), scopes }, { headers: { dpop: await dpop.proof({ method: "POST", url }) } });
  return minted.accessToken;
}

/** A client presenting `token` with the DPoP scheme and a fresh proof by `dpop` on every call. */
/** Transport settings a test adds (`nodeOptions: { agent: false }`: a connection per call). */
type TransportExtras = { readonly nodeOptions?: Omit<RequestOptions, "signal"> };

export function dpopClient<T extends DescService>(
  t: TestBroker,
  service: T,
  token: string,
  dpop: DpopKey,
  extras: TransportExtras = {},
): Client<T> {
  const prove: Interceptor = (next) => async (req) => {
    req.header.set("authorization", `DPoP ${token}`);
    const url = `${publicBase(t)}${new URL(req.url).pathname}`;
    req.header.set("dpop", await dpop.proof({ method: req.requestMethod, url, accessToken: token }));
    return next(req);
  };
  return createClient(
    service,
    createConnectTransport({ baseUrl: t.broker.url, httpVersion: "1.1", interceptors: [prove], ...extras }),
  );
}

export interface RunningAgent {
  readonly agentId: string;
  readonly apiKey: string;
  readonly dpop: DpopKey;
  readonly encryption: EncryptionKey;
  /** A new DPoP-bound token for `scopes`. */
  token(scopes: string[]): Promise<string>;
  client<T extends DescService>(service: T, token: string, extras?: TransportExtras): Client<T>;
}

/** Registers an agent owned by the caller of `ownerKey`, with `scopes`, an API key and an encryption key. */
export async function startAgent(t: TestBroker, ownerKey: string, scopes: string[]): Promise<RunningAgent> {
  const agents = t.client(AgentService, { key: ownerKey });
  const agent = await agents.registerAgent({ displayName: "deploy bot", scopes });
  const agentId = agent.agent?.id ?? "";
  const { secret: apiKey } = await t
    .client(ApiKeyService, { key: ownerKey })
    .createApiKey({ principalId: agentId, label: "bot" });
  const dpop = await createDpopKey();
  return {
    agentId,
    apiKey,
    dpop,
    encryption: await registerEncryptionKey(t, ownerKey, agentId),
    token: (wanted) => mintDpopToken(t, apiKey, dpop, wanted),
    client: (service, token, extras) => dpopClient(t, service, token, dpop, extras),
  };
}
