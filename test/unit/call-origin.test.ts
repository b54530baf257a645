// Who the client is (transport/call-origin.ts): the forwarding headers are
// believed only from a trusted proxy, read from the right, and the first hop
// that is not a trusted proxy is the client. Plus the request id a client may
// choose, and the configuration the rule is read from.
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/core/config.js";
import type { NodeServerRequest } from "../../src/core/http.js";
import { callOrigins, parseForwarded } from "../../src/transport/call-origin.js";

const request = (peer: string, headers: Record<string, string> = {}, encrypted = false) =>
  ({ socket: { remoteAddress: peer, encrypted }, headers }) as unknown as NodeServerRequest;

describe("the client address", () => {
  const behindProxies = callOrigins(
    loadConfig({ AEGIS_TRUSTED_PROXIES: "127.0.0.1/32, 10.0.0.0/8, fd00::/8" }).trustedProxies,
  );
  const direct = callOrigins([]);

  it.each([
    [
      "no trusted proxies: the headers are ignored",
      direct,
      "127.0.0.1",
      { "x-forwarded-for": "203.0.113.7" },
      "127.0.0.1",
    ],
    [
      "an untrusted peer's headers are ignored",
      behindProxies,
      "198.51.100.1",
      { "x-forwarded-for": "203.0.113.7" },
      "198.51.100.1",
    ],
    [
      "a trusted peer's X-Forwarded-For names the client",
      behindProxies,
      "127.0.0.1",
      { "x-forwarded-for": "203.0.113.7" },
      "203.0.113.7",
    ],
    [
      "a spoofed hop left of the real client proves nothing",
      behindProxies,
      "127.0.0.1",
      { "x-forwarded-for": "6.6.6.6, 203.0.113.7" },
      "203.0.113.7",
    ],
    [
      "trusted hops are skipped from the right",
      behindProxies,
      "127.0.0.1",
      { "x-forwarded-for": "6.6.6.6, 203.0.113.7, 10.1.2.3" },
      "203.0.113.7",
    ],
    [
      "all hops trusted: the leftmost",
      behindProxies,
      "127.0.0.1",
      { "x-forwarded-for": "10.9.9.9, 10.1.2.3" },
      "10.9.9.9",
    ],
    [
      "garbage stops at the proxy that wrote it",
      behindProxies,
      "127.0.0.1",
      { "x-forwarded-for": "203.0.113.7, unknown" },
      "127.0.0.1",
    ],
    ["ports are dropped", behindProxies, "127.0.0.1", { "x-forwarded-for": "203.0.113.7:5555" }, "203.0.113.7"],
    [
      "an IPv4-mapped peer is an IPv4 peer",
      behindProxies,
      "::ffff:127.0.0.1",
      { "x-forwarded-for": "203.0.113.7" },
      "203.0.113.7",
    ],
    [
      "Forwarded (RFC 7239), IPv6 with a port",
      behindProxies,
      "127.0.0.1",
      { forwarded: 'for="[2001:db8::17]:4711"' },
      "2001:db8::17",
    ],
    [
      "Forwarded wins over X-Forwarded-For",
      behindProxies,
      "127.0.0.1",
      { forwarded: "for=203.0.113.9", "x-forwarded-for": "203.0.113.7" },
      "203.0.113.9",
    ],
    [
      "Forwarded, several elements",
      behindProxies,
      "127.0.0.1",
      { forwarded: "for=6.6.6.6, for=203.0.113.9;proto=https, for=10.0.0.5" },
      "203.0.113.9",
    ],
    [
      "a malformed Forwarded is not believed at all",
      behindProxies,
      "127.0.0.1",
      { forwarded: "for=203.0.113.9;;;=" },
      "127.0.0.1",
    ],
    ["an IPv6 proxy", behindProxies, "fd00::1", { "x-forwarded-for": "2001:db8::5" }, "2001:db8::5"],
  ])("%s", (_what, originOf, peer, headers, address) => {
    const origin = originOf(request(peer, headers));
    expect(origin.clientAddress).toBe(address);
    expect(origin.client.startsWith(address)).toBe(true);
  });

  it("takes the scheme from a trusted proxy only", () => {
    expect(behindProxies(request("127.0.0.1", { "x-forwarded-proto": "https" })).clientProtocol).toBe("https");
    expect(behindProxies(request("198.51.100.1", { "x-forwarded-proto": "https" })).clientProtocol).toBe("http");
    expect(direct(request("127.0.0.1", { "x-forwarded-proto": "https" })).clientProtocol).toBe("http");
    expect(behindProxies(request("127.0.0.1", { forwarded: "for=203.0.113.9;proto=https" })).clientProtocol).toBe(
      "https",
    );
    expect(behindProxies(request("127.0.0.1", { "x-forwarded-proto": "gopher" })).clientProtocol).toBe("http");
    expect(direct(request("127.0.0.1", {}, true)).clientProtocol).toBe("https");
  });

  it("parses Forwarded elements and pairs, quoted or not", () => {
    expect(parseForwarded('for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711"')).toEqual([
      { for: "192.0.2.60", proto: "http" },
      { for: "[2001:db8:cafe::17]:4711" },
    ]);
    expect(parseForwarded("for=unknown")).toEqual([{ for: "unknown" }]);
    expect(parseForwarded('for="unterminated')).toBeUndefined();
  });
});

describe("the request id", () => {
  const originOf = callOrigins([]);
  it.each([
    ["abc-123", "abc-123"],
    ["A.b_c-9", "A.b_c-9"],
    ["x".repeat(64), "x".repeat(64)],
  ])("keeps a well-formed X-Request-Id %s", (given, kept) => {
    expect(originOf(request("127.0.0.1", { "x-request-id": given })).requestId).toBe(kept);
  });

  it.each([["x".repeat(65)], ["has space"], ["new\nline"], [""], ["ünïcode"], ["a;b"]])(
    "makes a new one for %j",
    (given) => {
      expect(originOf(request("127.0.0.1", { "x-request-id": given })).requestId).toMatch(/^req_[0-9a-f-]{36}$/);
    },
  );
});

describe("AEGIS_TRUSTED_PROXIES and AEGIS_METRICS_ADDRESS", () => {
  it("reads CIDRs and bare addresses", () => {
    expect(loadConfig({ AEGIS_TRUSTED_PROXIES: "10.0.0.0/8,::1, 192.168.1.1" }).trustedProxies).toEqual([
      "10.0.0.0/8",
      "::1/128",
      "192.168.1.1/32",
    ]);
    expect(loadConfig({}).trustedProxies).toEqual([]);
    expect(loadConfig({ AEGIS_METRICS_ADDRESS: "[::1]:9464" }).metricsAddress).toEqual({ host: "::1", port: 9464 });
    expect(loadConfig({ AEGIS_METRICS_ADDRESS: ":9464" }).metricsAddress).toEqual({ host: "0.0.0.0", port: 9464 });
    expect(loadConfig({}).metricsAddress).toBeUndefined();
  });

  it.each([
    [
      { AEGIS_TRUSTED_PROXIES: "10.0.0.0/33" },
      /^AEGIS_TRUSTED_PROXIES: "10.0.0.0\/33": an IPv4 prefix is at most \/32/,
    ],
    [
      { AEGIS_TRUSTED_PROXIES: "10.0.0.0/8, proxy.local" },
      /^AEGIS_TRUSTED_PROXIES: "proxy.local" is not an address or CIDR/,
    ],
    [{ AEGIS_TRUSTED_PROXIES: "10.0.0.0/8/8" }, /^AEGIS_TRUSTED_PROXIES: "10.0.0.0\/8\/8" is not/],
    [{ AEGIS_TRUSTED_PROXIES: "::/129" }, /^AEGIS_TRUSTED_PROXIES: "::\/129": an IPv6 prefix is at most \/128/],
    [{ AEGIS_TRUSTED_PROXIES: "10.0.0.0/x" }, /^AEGIS_TRUSTED_PROXIES: "10.0.0.0\/x" is not/],
    [{ AEGIS_METRICS_ADDRESS: "9464" }, /^AEGIS_METRICS_ADDRESS: must be host:port/],
    [{ AEGIS_METRICS_ADDRESS: "127.0.0.1:99999" }, /^AEGIS_METRICS_ADDRESS: must be host:port/],
    [{ AEGIS_METRICS_ADDRESS: "[nope]:1" }, /^AEGIS_METRICS_ADDRESS: must be host:port/],
  ])("names the variable for %o", (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });
});
