// The OpenAPI 3.1 document of the public Connect JSON endpoints, for
// Postman and Swagger users: one POST per unary public operation
// (`application/json`, the Connect protocol's unary JSON form), and a GET
// for the side-effect-free ones (Connect's GET form: `message`, `encoding`,
// `base64`, `connect` as query parameters). Built from the catalogue, so it
// holds the public surface only. Schemas follow the proto3 JSON mapping
// (64-bit integers as strings, enums by name, well-known types in their
// JSON forms).
import type { Catalogue, FieldDoc, MessageDoc, MethodDoc, ValueType } from "../catalogue.js";

type Schema = Record<string, unknown>;

const schemaRef = (typeName: string) => ({ $ref: `#/components/schemas/${typeName}` });

const scalarSchemas: Record<string, Schema> = {
  double: { type: "number", format: "double" },
  float: { type: "number", format: "float" },
  int64: { type: "string", format: "int64", pattern: "^-?[0-9]+$" },
  uint64: { type: "string", format: "uint64", pattern: "^[0-9]+$" },
  sint64: { type: "string", format: "int64", pattern: "^-?[0-9]+$" },
  fixed64: { type: "string", format: "uint64", pattern: "^[0-9]+$" },
  sfixed64: { type: "string", format: "int64", pattern: "^-?[0-9]+$" },
  int32: { type: "integer", format: "int32" },
  sint32: { type: "integer", format: "int32" },
  sfixed32: { type: "integer", format: "int32" },
  uint32: { type: "integer", format: "uint32", minimum: 0 },
  fixed32: { type: "integer", format: "uint32", minimum: 0 },
  bool: { type: "boolean" },
  string: { type: "string" },
  bytes: { type: "string", contentEncoding: "base64" },
};

const wellKnownSchemas: Record<string, Schema> = {
  "google.protobuf.Timestamp": { type: "string", format: "date-time", description: "RFC 3339 timestamp." },
  "google.protobuf.Duration": { type: "string", pattern: "^-?[0-9]+(\\.[0-9]+)?s$", description: "e.g. `300s`." },
  "google.protobuf.Struct": { type: "object", additionalProperties: true },
  "google.protobuf.Value": {},
  "google.protobuf.ListValue": { type: "array", items: {} },
  "google.protobuf.Any": { type: "object", properties: { "@type": { type: "string" } }, additionalProperties: true },
  "google.protobuf.FieldMask": { type: "string", description: "Comma-separated lowerCamelCase paths." },
  "google.protobuf.Empty": { type: "object" },
};

function valueSchema(value: ValueType, catalogue: Catalogue): Schema {
  if (value.kind === "scalar") return { ...scalarSchemas[value.scalar] };
  if (value.kind === "enum") {
    const e = catalogue.enums[value.typeName];
    return { type: "string", enum: e?.values.map((v) => v.name) ?? [] };
  }
  return schemaRef(value.typeName);
}

function fieldSchema(field: FieldDoc, catalogue: Catalogue): Schema {
  const one = valueSchema(field.value, catalogue);
  const schema: Schema =
    field.label === "repeated"
      ? { type: "array", items: one }
      : field.label === "map"
        ? { type: "object", additionalProperties: one }
        : one;
  const description = [
    field.description,
    field.behaviors.length ? `Field behaviour: ${field.behaviors.join(", ")}.` : "",
  ]
    .filter(Boolean)
    .join("\n\n");
  // A $ref with siblings is valid in 3.1; description beside it documents the field.
  return {
    ...schema,
    ...(description ? { description } : {}),
    ...(field.behaviors.includes("OUTPUT_ONLY") ? { readOnly: true } : {}),
  };
}

function messageSchema(message: MessageDoc, catalogue: Catalogue): Schema {
  const known = message.wellKnown && wellKnownSchemas[message.wellKnown];
  if (known) return { ...known, title: message.name };
  const required = message.fields.filter((f) => f.behaviors.includes("REQUIRED")).map((f) => f.jsonName);
  return {
    type: "object",
    title: message.name,
    ...(message.description ? { description: message.description } : {}),
    properties: Object.fromEntries(message.fields.map((f) => [f.jsonName, fieldSchema(f, catalogue)])),
    ...(required.length ? { required } : {}),
    additionalProperties: false,
  };
}

const firstSentence = (text: string, fallback: string): string => {
  const flat = text.replace(/\s+/g, " ").trim();
  const match = /^(.+?[.!?])(\s|$)/.exec(flat);
  return (match?.[1] ?? flat ?? fallback).slice(0, 200) || fallback;
};

function security(method: MethodDoc): Record<string, string[]>[] {
  if (method.policy.authorization === "anonymous") return [];
  if (method.policy.dpopRequired) return [{ dpop: [] }];
  return [{ bearer: [] }, { dpop: [] }];
}

function errorResponses(method: MethodDoc) {
  const error = { content: { "application/json": { schema: schemaRef("connect.error") } } };
  return {
    "400": { description: "invalid_argument (field violations in the details)", ...error },
    ...(method.policy.authorization === "anonymous"
      ? {}
      : {
          "401": { description: "unauthenticated", ...error },
          "403": { description: "permission_denied (e.g. MISSING_GRANT)", ...error },
        }),
    "429": { description: "resource_exhausted (rate limited; Retry-After)", ...error },
    default: { description: "Any other Connect error", ...error },
  };
}

function operation(method: MethodDoc, verb: "post" | "get", tag: string) {
  const dpopHeader = {
    name: "DPoP",
    in: "header",
    required: method.policy.dpopRequired,
    description: "A DPoP proof (RFC 9449) for this request, with `ath` when a token is sent.",
    schema: { type: "string" },
  };
  const common = {
    tags: [tag],
    summary: firstSentence(method.description, method.name),
    description: `${method.description}\n\nAction: \`${method.policy.action}\`.`,
    operationId: `${method.service}.${method.name}${verb === "get" ? ".get" : ""}`,
    security: security(method),
    responses: {
      "200": {
        description: "Success",
        content: { "application/json": { schema: schemaRef(method.output) } },
      },
      ...errorResponses(method),
    },
  };
  if (verb === "post") {
    return {
      ...common,
      parameters: [
        { name: "Connect-Protocol-Version", in: "header", required: false, schema: { type: "string", enum: ["1"] } },
        dpopHeader,
      ],
      requestBody: {
        required: true,
        content: { "application/json": { schema: schemaRef(method.input), example: method.example } },
      },
    };
  }
  return {
    ...common,
    parameters: [
      {
        name: "message",
        in: "query",
        required: true,
        description: "The request message, JSON (URL-encoded).",
        schema: { type: "string" },
        example: JSON.stringify(method.example),
      },
      { name: "encoding", in: "query", required: true, schema: { type: "string", enum: ["json"] } },
      { name: "connect", in: "query", required: false, schema: { type: "string", enum: ["v1"] } },
      { name: "base64", in: "query", required: false, schema: { type: "string", enum: ["1"] } },
      dpopHeader,
    ],
  };
}

export function openApiDocument(catalogue: Catalogue, version: string): Schema {
  const paths: Record<string, Schema> = {};
  for (const service of catalogue.services) {
    for (const method of service.methods) {
      if (method.streaming !== "unary") continue;
      paths[method.path] = {
        post: operation(method, "post", service.name),
        ...(method.idempotency === "NO_SIDE_EFFECTS" ? { get: operation(method, "get", service.name) } : {}),
      };
    }
  }
  const schemas: Record<string, Schema> = {
    "connect.error": {
      type: "object",
      title: "Connect error",
      description: "The Connect protocol's error body; details carry google.rpc.ErrorInfo (reason) and BadRequest.",
      properties: {
        code: { type: "string", description: "e.g. permission_denied" },
        message: { type: "string" },
        details: {
          type: "array",
          items: {
            type: "object",
            properties: { type: { type: "string" }, value: { type: "string" }, debug: {} },
          },
        },
      },
      required: ["code"],
    },
  };
  for (const [typeName, message] of Object.entries(catalogue.messages))
    schemas[typeName] = messageSchema(message, catalogue);
  // Only the schemas the paths reach (streaming operations and the error
  // details are in the catalogue, not in this document).
  const used = new Set<string>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) for (const item of node) walk(item);
    else if (node && typeof node === "object") {
      for (const [key, value] of Object.entries(node)) {
        if (key === "$ref" && typeof value === "string") {
          const name = value.replace("#/components/schemas/", "");
          if (!used.has(name)) {
            used.add(name);
            walk(schemas[name]);
          }
        } else walk(value);
      }
    }
  };
  walk(paths);
  return {
    openapi: "3.1.0",
    info: {
      title: "Aegis Broker public API (Connect JSON)",
      version,
      description:
        "The public operations of the Aegis credential broker over the Connect protocol's JSON form. " +
        "The same operations speak gRPC and gRPC-Web; see /developer for guides.",
      license: { name: "Proprietary", identifier: "LicenseRef-Proprietary" },
    },
    servers: [{ url: "/", description: "This broker" }],
    // A tag per service with an operation here: streaming-only services
    // (reflection, whose v1 and v1alpha share a name) have none.
    tags: catalogue.services
      .filter((s) => s.methods.some((m) => m.streaming === "unary"))
      .map((s) => ({ name: s.name, description: firstSentence(s.description, s.name) })),
    paths,
    components: {
      schemas: Object.fromEntries(Object.entries(schemas).filter(([name]) => used.has(name))),
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "An API key, user API token or broker token." },
        dpop: {
          type: "http",
          scheme: "DPoP",
          description: "A DPoP-bound broker token (RFC 9449), with a `DPoP` proof header on each call.",
        },
      },
    },
  };
}
