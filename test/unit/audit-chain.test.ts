import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { type ChainedAuditEvent, chainHash, findChainBreak, genesisHash } from "../../src/audit/audit-chain.js";

const key = randomBytes(32);

function chain(length: number): ChainedAuditEvent[] {
  const events: ChainedAuditEvent[] = [];
  let prev = { seq: 0n, hash: genesisHash };
  for (let i = 0; i < length; i++) {
    const unhashed = {
      seq: prev.seq + 1n,
      time: new Date(Date.UTC(2026, 0, 1, 0, 0, i)),
      requestId: `req_${i}`,
      tenantId: "ten_a",
      actorId: i % 2 ? null : "prn_a",
      client: "127.0.0.1",
      action: "tenant.create",
      target: `ten_${i}`,
      outcome: "success" as const,
      reason: "",
      prevHash: prev.hash,
    };
    const event = { ...unhashed, hash: chainHash(key, unhashed) };
    events.push(event);
    prev = event;
  }
  return events;
}

const start = { seq: 0n, hash: genesisHash };

describe("audit hash chain", () => {
  it("accepts an untouched chain", () => {
    expect(findChainBreak(key, chain(5), start)).toBeUndefined();
  });

  it.each([
    [
      "a modified field",
      (e: ChainedAuditEvent[]) => e.with(2, { ...(e[2] as ChainedAuditEvent), target: "ten_evil" }),
      3n,
    ],
    ["a deleted event", (e: ChainedAuditEvent[]) => e.toSpliced(2, 1), 3n],
    [
      "swapped events",
      (e: ChainedAuditEvent[]) => e.with(1, e[2] as ChainedAuditEvent).with(2, e[1] as ChainedAuditEvent),
      2n,
    ],
    [
      "an event re-hashed without the key",
      (e: ChainedAuditEvent[]) => {
        const forged = { ...(e[3] as ChainedAuditEvent), outcome: "denied" as const };
        return e.with(3, { ...forged, hash: chainHash(randomBytes(32), forged) });
      },
      4n,
    ],
  ])("finds %s", (_, tamper, seq) => {
    expect(findChainBreak(key, tamper(chain(5)), start)?.seq).toBe(seq);
  });

  it("does not verify under another key", () => {
    expect(findChainBreak(randomBytes(32), chain(2), start)?.seq).toBe(1n);
  });
});
