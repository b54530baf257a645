// How the CLI reaches a broker: the `--server` URL as given on the command
// line, plain fetches to its OAuth endpoints and Connect clients over
// HTTP/1.1. A connection that cannot be made at all becomes an
// UnreachableError that names the server and the reason in words, instead of
// undici's "fetch failed" or Connect's "[unavailable] connect ECONNREFUSED".
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { InvalidArgumentError } from "commander";
import { UnreachableError } from "./failures.js";

/** Parses a `--server` value: an http(s) URL, kept without a trailing slash. */
export function parseServerUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError("expected a URL such as http://127.0.0.1:8080");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new InvalidArgumentError("expected an http:// or https:// URL");
  }
  return value.replace(/\/+$/, "");
}

// Error codes (Node's system errors, undici's, OpenSSL's) that mean no
// conversation with the server took place, in the words shown to the user.
const connectionProblems: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host name lookup failed (temporary)",
  ETIMEDOUT: "connection timed out",
  UND_ERR_CONNECT_TIMEOUT: "connection timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  UND_ERR_SOCKET: "the connection was closed",
  EPROTO: "TLS handshake failed",
  ERR_SSL_WRONG_VERSION_NUMBER: "TLS handshake failed (is the server plain http?)",
  DEPTH_ZERO_SELF_SIGNED_CERT: "certificate not trusted (self-signed)",
  SELF_SIGNED_CERT_IN_CHAIN: "certificate not trusted (self-signed certificate in chain)",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "certificate not trusted (unknown issuer)",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "certificate not trusted (unknown issuer)",
  CERT_HAS_EXPIRED: "certificate expired",
  ERR_TLS_CERT_ALTNAME_INVALID: "certificate is for another host name",
};

/** The reason a connection failed, looked up along the `cause` chain (and in an AggregateError's errors). */
function connectionProblem(error: unknown, seen = new Set<unknown>()): string | undefined {
  if (!(error instanceof Error) || seen.has(error)) return undefined;
  seen.add(error);
  const code = (error as NodeJS.ErrnoException).code;
  if (code && connectionProblems[code]) return connectionProblems[code];
  const nested = error instanceof AggregateError ? [...error.errors, error.cause] : [error.cause];
  for (const inner of nested) {
    const problem = connectionProblem(inner, seen);
    if (problem) return problem;
  }
  return undefined;
}

function innermostMessage(error: unknown): string {
  let message = error instanceof Error ? error.message : String(error);
  for (let e = error instanceof Error ? error.cause : undefined; e instanceof Error; e = e.cause) message = e.message;
  return message;
}

/** `fetch`, with a failure to connect turned into an UnreachableError naming the URL's origin. */
export async function fetchFrom(url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (error) {
    // fetch rejects with a TypeError only when no HTTP response came back.
    if (!(error instanceof TypeError) || !URL.canParse(url)) throw error;
    const { origin, port } = new URL(url);
    const problem =
      connectionProblem(error) ??
      // The Fetch standard's blocked ports (1, 9, 25, …), which undici refuses without trying.
      (innermostMessage(error) === "bad port" ? `fetch never connects to port ${port}` : innermostMessage(error));
    throw new UnreachableError(origin, problem, { cause: error });
  }
}

/** A Connect transport to `server` whose connection failures become UnreachableError. */
export function brokerTransport(server: string, authenticate: Interceptor): Transport {
  const reachability: Interceptor = (next) => async (req) => {
    try {
      return await next(req);
    } catch (error) {
      const problem = connectionProblem(error);
      if (problem) throw new UnreachableError(server, problem, { cause: error });
      throw error;
    }
  };
  return createConnectTransport({ baseUrl: server, httpVersion: "1.1", interceptors: [reachability, authenticate] });
}
