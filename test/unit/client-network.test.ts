// What a client address counts under in the per-address limits.
// Tier: unit.
import { describe, expect, it } from "vitest";
import { clientNetwork } from "../../src/core/client-network.js";

describe("clientNetwork", () => {
  it.each([
    ["203.0.113.7", "203.0.113.7"],
    ["127.0.0.1", "127.0.0.1"],
    ["2001:db8:1:2::1", "2001:db8:1:2::/64"],
    ["2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"],
    ["2001:0DB8:0001:0002:0:0:0:8", "2001:db8:1:2::/64"],
    ["2001:db8::1", "2001:db8:0:0::/64"],
    ["fe80::1", "fe80:0:0:0::/64"],
    ["::1", "0:0:0:0::/64"],
    ["::", "0:0:0:0::/64"],
    ["::ffff:198.51.100.4", "198.51.100.4"],
    ["64:ff9b::203.0.113.7", "64:ff9b:0:0::/64"],
    ["unknown", "unknown"],
  ])("%s counts as %s", (address, network) => {
    expect(clientNetwork(address)).toBe(network);
  });

  it("groups every address of one /64, and only those", () => {
    const one = ["2001:db8:1:2::1", "2001:db8:1:2::8", "2001:db8:1:2:a:b:c:d"].map(clientNetwork);
    expect(new Set(one).size).toBe(1);
    expect(clientNetwork("2001:db8:1:3::1")).not.toBe(one[0]);
  });
});
