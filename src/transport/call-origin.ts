// Where a request comes from, decided once for RPCs and HTTP routes alike:
// its request id, the client's address (rate limits, audit, the device
// flow's pages) and the scheme the client used.
//
// Behind a load balancer the socket's peer is the balancer, and every client
// would share its address (one guesser locks everybody out). The forwarding
// headers (`Forwarded`, RFC 7239; `X-Forwarded-For` / `X-Forwarded-Proto`)
// say who the real client is, but anyone can send them: they are believed
// only when the socket's peer is one of AEGIS_TRUSTED_PROXIES, and then read
// from the right, hop by hop, for as long as the hop is itself a trusted
// proxy. The first untrusted hop is the client (the standard "rightmost
// untrusted" rule): entries further left were written by whoever that client
// is, and prove nothing. Without trusted proxies the headers are ignored.
import { randomUUID } from "node:crypto";
import { BlockList, isIP } from "node:net";
import type { CallOrigin } from "../core/call.js";
import type { NodeServerRequest } from "../core/http.js";

export type OriginOf = (req: NodeServerRequest) => CallOrigin;

/** A client's own request id is kept when it is this shape; otherwise the broker makes one. */
const clientRequestId = /^[A-Za-z0-9._-]{1,64}$/;
/** Hops read from the right at most: a longer chain is a client padding the header. */
const maxHops = 32;

export function callOrigins(trustedProxies: readonly string[]): OriginOf {
  const trusted = new BlockList();
  for (const cidr of trustedProxies) {
    const [address = "", prefix] = cidr.split("/");
    trusted.addSubnet(address, Number(prefix), isIP(address) === 6 ? "ipv6" : "ipv4");
  }
  const isTrusted = (address: string) => trusted.check(address, isIP(address) === 6 ? "ipv6" : "ipv4");

  return (req) => {
    const peer = ipOf(req.socket?.remoteAddress ?? "");
    const direct = { address: peer ?? "unknown", scheme: listenerScheme(req) };
    const { address, scheme } =
      peer !== undefined && trustedProxies.length > 0 && isTrusted(peer) ? forwarded(req, peer, isTrusted) : direct;
    const agent = String(req.headers["user-agent"] ?? "").slice(0, 120);
    return {
      requestId: requestIdOf(req),
      client: `${address} ${agent}`.trim(),
      clientAddress: address,
      clientProtocol: scheme,
    };
  };
}

/** The client's `X-Request-Id` when well-formed, else a new id. */
export function requestIdOf(req: NodeServerRequest): string {
  const given = req.headers["x-request-id"];
  return typeof given === "string" && clientRequestId.test(given) ? given : `req_${randomUUID()}`;
}

interface Hop {
  readonly for: string;
  readonly proto?: string;
}

/** The client behind a trusted peer: the rightmost hop that is not a trusted proxy. */
function forwarded(
  req: NodeServerRequest,
  peer: string,
  isTrusted: (address: string) => boolean,
): { address: string; scheme: "http" | "https" } {
  const header = req.headers.forwarded;
  // RFC 7239 supersedes the X-Forwarded-* family: when a proxy sends it, it is the one read.
  const hops = header !== undefined ? (parseForwarded(header) ?? []) : xForwarded(req);
  let address = peer;
  let scheme = listenerScheme(req);
  if (header === undefined) scheme = schemeOf(lastItem(req.headers["x-forwarded-proto"])) ?? scheme;
  for (const hop of hops.slice(-maxHops).reverse()) {
    const next = ipOf(hop.for);
    // "unknown", an obfuscated name or garbage: the proxy that wrote it is the last address known.
    if (next === undefined) break;
    address = next;
    if (hop.proto !== undefined) scheme = schemeOf(hop.proto) ?? scheme;
    if (!isTrusted(next)) break;
  }
  return { address, scheme };
}

function xForwarded(req: NodeServerRequest): Hop[] {
  const header = req.headers["x-forwarded-for"];
  const value = Array.isArray(header) ? header.join(",") : (header ?? "");
  return value
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "")
    .map((item) => ({ for: item }));
}

// forwarded-element = forwarded-pair *( ";" forwarded-pair ), elements
// separated by ","; value = token / quoted-string (RFC 7239 §4).
const forwardedPair = /\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)=("(?:[^"\\]|\\.)*"|[!#$%&'*+.^_`|~0-9A-Za-z:[\]-]*)\s*(;|,|$)/y;

/** The elements of a `Forwarded` header, or undefined when it is malformed (then nothing of it is believed). */
export function parseForwarded(header: string): Hop[] | undefined {
  const hops: Hop[] = [];
  let element: { for?: string; proto?: string } = {};
  forwardedPair.lastIndex = 0;
  while (forwardedPair.lastIndex < header.length) {
    const match = forwardedPair.exec(header);
    if (!match) return undefined;
    const [, name = "", raw = "", separator] = match;
    const value = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, "$1") : raw;
    const key = name.toLowerCase();
    if (key === "for" || key === "proto") element[key] = value;
    if (separator !== ";") {
      hops.push({ for: element.for ?? "", ...(element.proto !== undefined ? { proto: element.proto } : {}) });
      element = {};
    }
    if (separator === "") break;
  }
  return hops;
}

/** An IP address out of a socket address or a forwarded node (`[v6]:port`, `v4:port`, IPv4-mapped v6), or undefined. */
function ipOf(node: string): string | undefined {
  let text = node.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(text);
  if (bracketed) text = bracketed[1] as string;
  else if (/^[\d.]+:\d+$/.test(text)) text = text.slice(0, text.indexOf(":"));
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text);
  if (mapped) text = mapped[1] as string;
  return isIP(text) === 0 ? undefined : text;
}

function lastItem(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header.join(",") : header;
  return value?.split(",").at(-1)?.trim();
}

function schemeOf(value: string | undefined): "http" | "https" | undefined {
  const lower = value?.toLowerCase();
  return lower === "http" || lower === "https" ? lower : undefined;
}

function listenerScheme(req: NodeServerRequest): "http" | "https" {
  return req.socket && "encrypted" in req.socket && req.socket.encrypted ? "https" : "http";
}
