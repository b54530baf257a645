// publicUrlOf: the DPoP `htu` of a call is the configured public URL plus
// the path the request reached, exactly the path a URL parser reads, also
// on the parser-free fast path. Tier: unit.
import { describe, expect, it } from "vitest";
import { publicUrlOf } from "../../src/core/call.js";

const base = "https://aegis.example.com";
const byParser = (url: string) => `${base}${new URL(url, base).pathname}`;

describe("publicUrlOf", () => {
  it.each([
    "http://127.0.0.1:8080/aegis.token.v1.TokenService/MintToken",
    "http://127.0.0.1:8080/aegis.token.v1.TokenService/MintToken?x=1",
    "https://evil.example/aegis.token.v1.TokenService/MintToken#frag",
    "http://user@host/aegis.token.v1.TokenService/MintToken",
    "http://[::1]:9000/grpc.health.v1.Health/Check",
    "http://host/a/../aegis.token.v1.TokenService/MintToken",
    "http://host/a/./b",
    "http://host/%2e%2e/b",
    "http://host/a b/c",
    "http://host/a/",
    "http://host",
    "http://ho\tst/a/b",
    "http://host/a\t/b",
    "http:\\\\host\\a\\b",
    "/relative/path",
    "http://host/ü/x",
  ])("gives the path a URL parser reads for %j", (url) => {
    expect(publicUrlOf(base, url)).toBe(byParser(url));
  });
});
