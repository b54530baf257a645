// A page of another web application, bundled by test/api/cors-browser.test.ts
// with esbuild and served from its own origin: it calls the broker with
// connect-web over Connect (POST and GET) and gRPC-Web, as an integrator's
// page would. Each call returns what the page could read, or its failure.
import { type Client, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { AgentService } from "../../../gen/proto/aegis/agent/v1/agent_pb.js";
import { PrincipalService } from "../../../gen/proto/aegis/principal/v1/principal_pb.js";
import { TokenService } from "../../../gen/proto/aegis/token/v1/token_pb.js";

export type PageProtocol = "connect" | "connect-get" | "grpc-web";

export interface Outcome<T> {
  readonly ok?: T;
  readonly error?: { readonly code: number; readonly message: string; readonly challenge: string | null };
  /** Response headers the page could read. */
  readonly headers: Record<string, string>;
}

function transport(baseUrl: string, protocol: PageProtocol, key: string | undefined): Transport {
  const interceptors: Interceptor[] = key
    ? [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${key}`);
          return next(req);
        },
      ]
    : [];
  return protocol === "grpc-web"
    ? createGrpcWebTransport({ baseUrl, interceptors })
    : createConnectTransport({ baseUrl, interceptors, useHttpGet: protocol === "connect-get" });
}

async function outcome<T>(call: (onHeader: (h: Headers) => void) => Promise<T>): Promise<Outcome<T>> {
  const headers: Record<string, string> = {};
  const onHeader = (h: Headers) =>
    h.forEach((value, name) => {
      headers[name] = value;
    });
  try {
    return { ok: await call(onHeader), headers };
  } catch (thrown) {
    const error = ConnectError.from(thrown);
    return {
      error: { code: error.code, message: error.rawMessage, challenge: error.metadata.get("www-authenticate") },
      headers,
    };
  }
}

const api = {
  getJwks(baseUrl: string, protocol: PageProtocol) {
    const client: Client<typeof TokenService> = createClient(TokenService, transport(baseUrl, protocol, undefined));
    return outcome(async (onHeader) => (await client.getJwks({}, { onHeader })).keys.map((k) => k.kid));
  },
  whoAmI(baseUrl: string, protocol: PageProtocol, key: string | undefined) {
    const client = createClient(PrincipalService, transport(baseUrl, protocol, key));
    return outcome(async (onHeader) => (await client.whoAmI({}, { onHeader })).principal?.id ?? "");
  },
  registerAgent(baseUrl: string, protocol: PageProtocol, key: string, displayName: string) {
    const client = createClient(AgentService, transport(baseUrl, protocol, key));
    return outcome(async (onHeader) => (await client.registerAgent({ displayName }, { onHeader })).agent?.id ?? "");
  },
  /** A form POST a page may send without asking (no preflight); its answer is opaque to the page. */
  async mintByForm(baseUrl: string, key: string) {
    await fetch(`${baseUrl}/oauth/token`, {
      method: "POST",
      mode: "no-cors",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", client_secret: key }).toString(),
    });
    return "sent";
  },
};

export type PageApi = typeof api;
(globalThis as unknown as { aegis: PageApi }).aegis = api;
