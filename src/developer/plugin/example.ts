// An example request in the proto3 JSON form, built from the input schema:
// what the portal pre-fills in "Try it" and shows in the snippets. Values
// are chosen to pass the field's own rules where the name says what it is
// (selectors, URLs); a field that is output only is left out.
import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";

const maxDepth = 3;

/** A field's google.api.field_behavior names (AIP-203), e.g. REQUIRED, OUTPUT_ONLY. */
export type BehaviorsOf = (field: DescField) => readonly string[];

function scalarExample(field: DescField, scalar: ScalarType): unknown {
  const name = field.name;
  switch (scalar) {
    case ScalarType.STRING:
      if (name.endsWith("_id") || name === "id") return `${name.replace(/_id$/, "")}_…`;
      if (name === "scope" || name === "scopes")
        return "credential.lease.redeem:provider:gcp:app:billing:account:deploy";
      if (name.includes("url") || name === "audience" || name === "identifier") return "https://api.example.com";
      if (name.includes("selector")) return "provider:gcp:app:billing:account:deploy";
      if (name === "provider") return "gcp";
      if (name === "app") return "billing";
      if (name === "account") return "deploy";
      if (name.includes("jkt")) return "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
      if (name.includes("page_token")) return "";
      return name.replace(/_/g, " ");
    case ScalarType.BOOL:
      return false;
    case ScalarType.BYTES:
      return "";
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return "1";
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return 1.5;
    default:
      if (name.includes("page_size")) return 20;
      if (name.includes("seconds")) return 300;
      return 1;
  }
}

export function exampleOf(message: DescMessage, behaviors: BehaviorsOf, depth = 0): Record<string, unknown> {
  if (message.typeName === "google.protobuf.Timestamp") return "2026-01-01T00:00:00Z" as never;
  if (message.typeName === "google.protobuf.Duration") return "300s" as never;
  const out: Record<string, unknown> = {};
  const seenOneofs = new Set<string>();
  // With required fields, the example is the smallest valid request: those
  // alone. Without, every input field but optional ids (filters that would
  // need a real id to pass).
  const anyRequired = message.fields.some((f) => behaviors(f).includes("REQUIRED"));
  for (const field of message.fields) {
    const marks = behaviors(field);
    if (marks.includes("OUTPUT_ONLY")) continue;
    if (anyRequired && !marks.includes("REQUIRED")) continue;
    if (!anyRequired && (field.name.endsWith("_id") || field.name.endsWith("_jkt"))) continue;
    if (field.oneof && !field.proto.proto3Optional) {
      if (seenOneofs.has(field.oneof.name)) continue;
      seenOneofs.add(field.oneof.name);
    }
    const value = exampleValue(field, behaviors, depth);
    if (value !== undefined) out[field.jsonName] = value;
  }
  return out;
}

function exampleValue(field: DescField, behaviors: BehaviorsOf, depth: number): unknown {
  const one = (): unknown => {
    if (field.message) {
      if (depth >= maxDepth) return undefined;
      return exampleOf(field.message, behaviors, depth + 1);
    }
    if (field.enum) return field.enum.values.find((v) => v.number !== 0)?.name ?? field.enum.values[0]?.name;
    if ("scalar" in field && field.scalar !== undefined) return scalarExample(field, field.scalar);
    return undefined;
  };
  if (field.fieldKind === "map") {
    const value = one();
    return value === undefined ? undefined : { key: value };
  }
  if (field.fieldKind === "list") {
    const value = one();
    return value === undefined ? undefined : [value];
  }
  return one();
}
