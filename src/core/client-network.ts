// The key a client address counts under in per-address limits: an IPv4
// address as it is, an IPv6 address by its /64. One IPv6 subscriber, or one
// host, is given a /64 and may take a fresh address from it for every
// request (RFC 4941 makes that routine), so a limit keyed on the whole
// address would count each guess as a new client. Audit events keep the
// whole address; only the limits group.
import { isIP } from "node:net";

/** `203.0.113.7` → itself; `2001:db8:1:2::8` → `2001:db8:1:2::/64`; an IPv4-mapped IPv6 address → its IPv4. */
export function clientNetwork(address: string): string {
  if (isIP(address) !== 6) return address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1] && isIP(mapped[1]) === 4) return mapped[1];
  const [head = "", tail] = address.toLowerCase().split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  // An embedded IPv4 tail (`::1.2.3.4`) fills the last two groups, never the first four.
  const groups = [...left, ...Array(Math.max(8 - left.length - right.length, 0)).fill("0"), ...right];
  const prefix = groups.slice(0, 4).map((group) => Number.parseInt(group, 16).toString(16));
  return `${prefix.join(":")}::/64`;
}
