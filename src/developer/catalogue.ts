// The shape of the portal's catalogue (gen/developer/catalogue.json): what
// the protobuf plugin (plugin/) writes from the descriptors, and what the
// page builder and the browser read. Public operations only: the plugin
// leaves private services and methods out, and every message and enum only
// they use, so no private name reaches a served asset.

export type Authorization = "grant" | "self" | "anonymous";
export type Idempotency = "NO_SIDE_EFFECTS" | "IDEMPOTENT" | "IDEMPOTENCY_UNKNOWN";
export type Streaming = "unary" | "server_streaming" | "client_streaming" | "bidi_streaming";

export interface Catalogue {
  readonly services: readonly ServiceDoc[];
  /** Every message a public operation reaches, by full type name. */
  readonly messages: Readonly<Record<string, MessageDoc>>;
  /** Every enum a public operation reaches, by full type name. */
  readonly enums: Readonly<Record<string, EnumDoc>>;
  /**
   * A FileDescriptorSet (base64) of the public surface only: public services
   * and methods, the types they reach, no comments, no options. The browser
   * builds its registry from it to speak Connect and gRPC-Web.
   */
  readonly descriptorSet: string;
}

export interface ServiceDoc {
  readonly typeName: string;
  readonly name: string;
  readonly description: string;
  readonly methods: readonly MethodDoc[];
}

export interface MethodPolicyDoc {
  /** The action granted in scopes, e.g. `credential.lease.redeem`. */
  readonly action: string;
  readonly dpopRequired: boolean;
  readonly authorization: Authorization;
  /** Authenticates as an OAuth client (API key, user API token or RFC 7523 assertion). */
  readonly clientAuthentication: boolean;
  readonly targetField: string;
  readonly auditEveryRefusal: boolean;
}

export interface MethodDoc {
  readonly service: string;
  readonly name: string;
  /** The RPC path: `/<service type name>/<method>`. */
  readonly path: string;
  readonly description: string;
  readonly input: string;
  readonly output: string;
  readonly streaming: Streaming;
  readonly idempotency: Idempotency;
  readonly policy: MethodPolicyDoc;
  /** A request in the proto3 JSON form, built from the input schema. */
  readonly example: unknown;
}

export type ScalarType =
  | "double"
  | "float"
  | "int64"
  | "uint64"
  | "int32"
  | "fixed64"
  | "fixed32"
  | "bool"
  | "string"
  | "bytes"
  | "uint32"
  | "sfixed32"
  | "sfixed64"
  | "sint32"
  | "sint64";

/** A field's value type: a scalar, or a message or enum named by its full type name. */
export type ValueType =
  | { readonly kind: "scalar"; readonly scalar: ScalarType }
  | { readonly kind: "message"; readonly typeName: string }
  | { readonly kind: "enum"; readonly typeName: string };

export interface FieldDoc {
  readonly name: string;
  readonly jsonName: string;
  readonly number: number;
  readonly description: string;
  readonly label: "singular" | "optional" | "repeated" | "map";
  readonly value: ValueType;
  /** The key type of a map field. */
  readonly mapKey?: ScalarType;
  /** The oneof the field belongs to, when any. */
  readonly oneof?: string;
  /** google.api.field_behavior (AIP-203), e.g. REQUIRED, OUTPUT_ONLY. */
  readonly behaviors: readonly string[];
  /** The protovalidate rules (buf.validate.field) in their JSON form; absent when none. */
  readonly rules?: unknown;
}

export interface MessageDoc {
  readonly typeName: string;
  readonly name: string;
  readonly description: string;
  readonly fields: readonly FieldDoc[];
  /** Whether this is a well-known type with a JSON form of its own (Timestamp, Duration, Struct, …). */
  readonly wellKnown?: string;
}

export interface EnumDoc {
  readonly typeName: string;
  readonly name: string;
  readonly description: string;
  readonly values: readonly { readonly name: string; readonly number: number; readonly description: string }[];
}

/** The page of an operation: `/developer/api/<service>/<method>`. */
export const operationPath = (m: Pick<MethodDoc, "service" | "name">): string =>
  `/developer/api/${m.service}/${m.name}`;
