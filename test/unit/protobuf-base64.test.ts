// The base64 encoder of @bufbuild/protobuf as patched here
// (patches/@bufbuild+protobuf+*.patch): on Node.js without
// Uint8Array.prototype.toBase64 it encodes through Buffer. Its output must be
// what the JSON mapping of `bytes` fields requires, for every encoding the
// library names, for any length and for views into a larger buffer (a field
// decoded from a request is often one).
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { create, fromJsonString, toJsonString } from "@bufbuild/protobuf";
import { base64Decode, base64Encode } from "@bufbuild/protobuf/wire";
import { BytesValueSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";

/** RFC 4648 §4 (and §5 for "url"), written out with no Buffer. */
function reference(bytes: Uint8Array, encoding: "std" | "std_raw" | "url"): string {
  const alphabet = `ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789${encoding === "url" ? "-_" : "+/"}`;
  let text = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const [a, b, c] = [bytes[i] as number, bytes[i + 1], bytes[i + 2]];
    const group = (a << 16) | ((b ?? 0) << 8) | (c ?? 0);
    const chars = b === undefined ? 2 : c === undefined ? 3 : 4;
    for (let k = 0; k < chars; k++) text += alphabet[(group >> (18 - 6 * k)) & 63];
    if (encoding === "std") text += "=".repeat(4 - chars);
  }
  return text;
}

describe("base64Encode (patched to use Buffer)", () => {
  it("is the patched encoder: this Node.js has no Uint8Array.prototype.toBase64", () => {
    expect((Uint8Array.prototype as { toBase64?: unknown }).toBase64).toBeUndefined();
    for (const flavour of ["esm", "cjs"]) {
      const file = new URL(
        `../../node_modules/@bufbuild/protobuf/dist/${flavour}/wire/base64-encoding.js`,
        import.meta.url,
      );
      expect(readFileSync(file, "utf8")).toContain("Patched (aegis-broker)");
    }
  });

  it("encodes every length from 0 to 100 bytes, and 1 KiB, as RFC 4648 does, in each encoding", () => {
    for (const length of [...Array.from({ length: 101 }, (_, i) => i), 1024, 1025, 1026]) {
      const bytes = new Uint8Array(randomBytes(length));
      for (const encoding of ["std", "std_raw", "url"] as const) {
        expect(base64Encode(bytes, encoding), `${length} bytes, ${encoding}`).toBe(reference(bytes, encoding));
      }
    }
  });

  it("encodes a view into a larger buffer as the view's bytes only", () => {
    const backing = new Uint8Array(randomBytes(64));
    for (const [offset, length] of [
      [0, 10],
      [1, 10],
      [7, 31],
      [63, 1],
      [64, 0],
    ] as const) {
      const view = backing.subarray(offset, offset + length);
      expect(base64Encode(view)).toBe(reference(view, "std"));
      expect(base64Encode(view, "url")).toBe(reference(view, "url"));
    }
  });

  it("round-trips bytes fields through the JSON mapping", () => {
    for (const length of [0, 1, 2, 3, 500, 4096]) {
      const value = new Uint8Array(randomBytes(length));
      const json = toJsonString(BytesValueSchema, create(BytesValueSchema, { value }));
      expect(json).toBe(JSON.stringify(reference(value, "std")));
      expect(fromJsonString(BytesValueSchema, json).value).toEqual(value);
      expect(base64Decode(base64Encode(value, "url"))).toEqual(value);
    }
  });
});
