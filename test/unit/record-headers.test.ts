// RecordHeaders (the transport's Fetch `Headers`) side by side with Node's
// own: every operation of a script is applied to both, and what each then
// answers must be the same, errors included.
import { describe, expect, it } from "vitest";
import { addNodeHeader, RecordHeaders } from "../../src/transport/record-headers.js";

type Step = (h: Headers) => unknown;

/** What `h` answers after the steps: each step's outcome (a value or the error's type), then every view of it. */
function observe(h: Headers, steps: Step[]) {
  const outcomes = steps.map((step) => {
    try {
      return { value: step(h) ?? null };
    } catch (error) {
      return { threw: (error as Error).constructor.name };
    }
  });
  const forEach: [string, string][] = [];
  h.forEach((value, name) => {
    forEach.push([name, value]);
  });
  return {
    outcomes,
    entries: [...(h as unknown as Iterable<[string, string]>)],
    keys: [...(h as unknown as { keys(): Iterable<string> }).keys()],
    values: [...(h as unknown as { values(): Iterable<string> }).values()],
    forEach,
    cookies: h.getSetCookie(),
  };
}

const scripts: Record<string, Step[]> = {
  "case-insensitive names, repeated values joined": [
    (h) => h.append("X-Thing", "one"),
    (h) => h.append("x-thing", "two"),
    (h) => h.get("X-THING"),
    (h) => h.has("x-Thing"),
    (h) => h.set("X-Thing", "three"),
    (h) => h.get("x-thing"),
    (h) => h.delete("X-THING"),
    (h) => h.get("x-thing"),
    (h) => h.has("x-thing"),
  ],
  "values trimmed of HTTP white space, inner white space kept": [
    (h) => h.set("a", " \t value  with  spaces \t\r\n"),
    (h) => h.get("a"),
    (h) => h.append("b", ""),
    (h) => h.get("b"),
  ],
  "iteration sorted by name, set-cookie values one by one": [
    (h) => h.append("zeta", "z"),
    (h) => h.append("Set-Cookie", "a=1"),
    (h) => h.append("alpha", "a"),
    (h) => h.append("set-cookie", "b=2; Path=/"),
    (h) => h.append("alpha", "b"),
    (h) => h.get("set-cookie"),
    (h) => h.set("set-cookie", "c=3"),
    (h) => h.get("set-cookie"),
    (h) => h.append("set-cookie", "d=4"),
  ],
  "set-cookie deleted": [
    (h) => h.append("set-cookie", "a=1"),
    (h) => h.delete("Set-Cookie"),
    (h) => h.has("set-cookie"),
  ],
  "missing names": [(h) => h.get("nothing"), (h) => h.has("nothing"), (h) => h.delete("nothing")],
  "invalid names and values refused": [
    (h) => h.set("", "x"),
    (h) => h.set("bad name", "x"),
    (h) => h.set("bad:name", "x"),
    (h) => h.append("héllo", "x"),
    (h) => h.get("bad name"),
    (h) => h.has("(x)"),
    (h) => h.delete("a b"),
    (h) => h.set("ok", "line\nbreak"),
    (h) => h.set("ok", "carriage\rreturn"),
    (h) => h.append("ok", "nul\0byte"),
    (h) => h.set("ok", "snowman ☃"),
    (h) => h.set("ok", "latin-1 é is a byte"),
    (h) => h.get("ok"),
  ],
};

describe("RecordHeaders", () => {
  it.each(Object.entries(scripts))("answers as Node's Headers: %s", (_, steps) => {
    const ours = observe(new RecordHeaders(), steps);
    expect(ours).toEqual(observe(new Headers(), steps));
    // The script does what it says (not two implementations agreeing on nothing).
    expect(ours.outcomes.length).toBe(steps.length);
  });

  it("copies a Node request's header object as Node's Headers would by appending each value", () => {
    const incoming = {
      host: "broker.example:8080",
      "content-type": "application/json",
      authorization: "Bearer aegis_ak_x",
      "x-forwarded-for": "203.0.113.7, 198.51.100.1",
      "set-cookie": ["a=1", "b=2"],
      "x-empty": "",
      absent: undefined,
    };
    const theirs = new Headers();
    for (const [name, value] of Object.entries(incoming)) {
      if (value === undefined) continue;
      for (const item of Array.isArray(value) ? value : [value]) theirs.append(name, item);
    }
    const ours = new RecordHeaders(incoming);
    expect(observe(ours, [])).toEqual(observe(theirs, []));
    expect(ours.get("authorization")).toBe("Bearer aegis_ak_x");
  });

  it("leaves HTTP/2 pseudo-headers out of a request's headers", () => {
    const ours = new RecordHeaders({ ":method": "POST", ":path": "/x", "content-type": "application/json" });
    expect([...ours]).toEqual([["content-type", "application/json"]]);
  });

  it("copies pairs, and is taken by Node's Headers as its init", () => {
    const ours = new RecordHeaders([
      ["Content-Type", "application/proto"],
      ["x-a", "1"],
      ["X-A", "2"],
    ]);
    expect([...(new Headers(ours) as unknown as Iterable<[string, string]>)]).toEqual([
      ["content-type", "application/proto"],
      ["x-a", "1, 2"],
    ]);
    expect(Object.prototype.toString.call(ours)).toBe("[object Headers]");
  });

  it("adds itself to a writeHead object as Node would write its entries, trailers under their prefix", () => {
    const header = new RecordHeaders([
      ["Content-Type", "application/json"],
      ["x-a", "1"],
      ["X-A", "2"],
      ["set-cookie", "a=1"],
      ["Set-Cookie", "b=2"],
    ]);
    const trailer = new RecordHeaders([["a", "t"]]);
    const target: Record<string, string | string[]> = { "trailer-a": "already" };
    header.addTo(target);
    trailer.addTo(target, "trailer-");
    expect(target).toEqual({
      "content-type": "application/json",
      "x-a": "1, 2",
      "set-cookie": ["a=1", "b=2"],
      "trailer-a": ["already", "t"],
    });
    // The same name → value(s) as Fetch's (sorted) iteration gives.
    const fromEntries: Record<string, string | string[]> = {};
    for (const [name, value] of header) addNodeHeader(fromEntries, name, value);
    const { "trailer-a": _, ...added } = target;
    expect(added).toEqual(fromEntries);
  });
});
