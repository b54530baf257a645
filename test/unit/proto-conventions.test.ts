// Two naming rules of the API, held over the generated descriptors of every
// service the broker serves (README, "Request rules"): a resource names its
// own id `id` (AIP-122), and a duration is a google.protobuf.Duration named
// for what it is, with no unit in its name (AIP-142). OAuth's own words
// (`client_id`, `expires_in`, `interval`) are RFC 6749's and 8628's, not ours.
import { type DescField, type DescMessage, getOption } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { FieldBehavior, field_behavior } from "../../gen/proto/google/api/field_behavior_pb.js";
import { services } from "../../src/app/modules.js";

function reachable(roots: readonly DescMessage[]): DescMessage[] {
  const seen = new Map<string, DescMessage>();
  const walk = (m: DescMessage) => {
    if (m.typeName.startsWith("google.") || seen.has(m.typeName)) return;
    seen.set(m.typeName, m);
    for (const f of m.fields) if (f.message) walk(f.message);
  };
  roots.forEach(walk);
  return [...seen.values()];
}

const methods = services.flatMap((s) => s.methods);
const messages = reachable(methods.flatMap((m) => [m.input, m.output]));
const fields = messages.flatMap((m) => m.fields);
const resources = messages.filter((m) => !/(Request|Response)$/.test(m.name));
const name = (f: DescField) => `${f.parent.typeName}.${f.name}`;
const outputOnly = (f: DescField) => getOption(f, field_behavior).includes(FieldBehavior.OUTPUT_ONLY);
const isDuration = (f: DescField) => f.message?.typeName === "google.protobuf.Duration";
// OAuth's own names for durations, in messages that mirror its responses.
const oauthWords = new Set(["expires_in", "interval"]);

describe("resource ids (AIP-122)", () => {
  it("has resources with ids to check (or this file tests nothing)", () => {
    const withId = resources.filter((m) => m.fields.some((f) => f.name === "id")).map((m) => m.name);
    expect(withId).toEqual(expect.arrayContaining(["Agent", "ApiKey", "AgentKey", "Credential", "Grant", "Key"]));
    expect(withId).toEqual(expect.arrayContaining(["Lease", "OAuthClient", "Person", "ResourceServer", "Role"]));
  });

  it("names a resource's own id `id`, never `<resource>_id`", () => {
    // The id a resource is given: its output-only first field ending in _id.
    const ownIds = resources
      .flatMap((m) => m.fields.filter((f) => f.number === 1 && f.name.endsWith("_id") && outputOnly(f)))
      .map(name);
    expect(ownIds).toEqual([]);
  });
});

describe("durations (AIP-142)", () => {
  it("has durations to check (or this file tests nothing)", () => {
    expect(fields.filter(isDuration).length).toBeGreaterThanOrEqual(10);
  });

  it("carries every duration as a google.protobuf.Duration, not as a count of a unit", () => {
    const counted = fields
      .filter((f) => f.fieldKind === "scalar" && /_(seconds|secs|minutes|hours|days|ms|millis)$/.test(f.name))
      .map(name);
    expect(counted).toEqual([]);
  });

  it("names a duration for what it is, with no unit in its name", () => {
    expect(fields.filter((f) => isDuration(f) && /_(seconds|minutes|hours|days|ms)$/.test(f.name)).map(name)).toEqual(
      [],
    );
  });

  it("keeps OAuth's integer seconds only where OAuth names them", () => {
    const integerTimes = fields
      .filter((f) => f.fieldKind === "scalar" && /(ttl|lifetime|period|grace|expires|interval|timeout)/.test(f.name))
      .map((f) => f.name);
    expect(new Set(integerTimes)).toEqual(new Set([...oauthWords].filter((w) => integerTimes.includes(w))));
    expect(integerTimes.length).toBeGreaterThan(0);
  });
});
