// Turns the descriptors buf hands the plugin into the portal's catalogue:
// public services and methods only (visibility from each method's
// `(aegis.options.v1.policy)`), their comments, the schemas they reach, their
// policy, an example request each, and a descriptor set of that public
// surface alone for the browser. The options are read through the
// extensions found in the request itself, not through gen/: the plugin runs
// while gen/ is being rebuilt.
import {
  clone,
  create,
  type DescEnum,
  type DescExtension,
  type DescField,
  type DescFile,
  type DescMessage,
  type DescMethod,
  getOption,
  hasOption,
  type Registry,
  ScalarType,
  toBinary,
  toJson,
} from "@bufbuild/protobuf";
import {
  type DescriptorProto,
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  MethodOptions_IdempotencyLevel,
} from "@bufbuild/protobuf/wkt";
import { getComments } from "@bufbuild/protoplugin";
import type {
  Authorization,
  Catalogue,
  EnumDoc,
  FieldDoc,
  MessageDoc,
  MethodDoc,
  ScalarType as ScalarName,
  ServiceDoc,
  ValueType,
} from "../catalogue.js";
import { exampleOf } from "./example.js";

const visibilityPublic = 1;
const senderConstraintDpop = 2;
const authorizations: Record<number, Authorization> = { 1: "grant", 2: "self", 3: "anonymous" };

/** Extensions the catalogue reads, looked up by name in the request's files. */
interface Extensions {
  readonly policy: DescExtension;
  readonly fieldBehavior?: DescExtension;
  readonly validateField?: DescExtension;
}

function extensionNamed(files: readonly DescFile[], typeName: string): DescExtension | undefined {
  for (const file of files) {
    const found = file.extensions.find((e) => e.typeName === typeName);
    if (found) return found;
  }
  return undefined;
}

const comment = (desc: Parameters<typeof getComments>[0]): string =>
  (getComments(desc).leading ?? "")
    .split("\n")
    .map((line) => line.replace(/^ /, ""))
    .join("\n")
    .trim();

/** The policy option of a method as plain values; undefined when it has none (never public then). */
function policyOf(method: DescMethod, ext: DescExtension) {
  if (!hasOption(method, ext)) return undefined;
  // A dynamic message of aegis.options.v1.MethodPolicy: fields by local name.
  const p = getOption(method, ext) as unknown as Record<string, unknown>;
  return {
    visibility: Number(p.visibility ?? 0),
    policy: {
      action: String(p.action ?? ""),
      dpopRequired: Number(p.senderConstraint ?? 0) === senderConstraintDpop,
      authorization: authorizations[Number(p.authorization ?? 0)] ?? "grant",
      clientAuthentication: Boolean(p.clientAuthentication),
      targetField: String(p.targetField ?? ""),
      auditEveryRefusal: Boolean(p.auditEveryRefusal),
    },
  };
}

const idempotencies = {
  [MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS]: "NO_SIDE_EFFECTS",
  [MethodOptions_IdempotencyLevel.IDEMPOTENT]: "IDEMPOTENT",
  [MethodOptions_IdempotencyLevel.IDEMPOTENCY_UNKNOWN]: "IDEMPOTENCY_UNKNOWN",
} as const;

const wellKnownJson = new Set([
  "google.protobuf.Timestamp",
  "google.protobuf.Duration",
  "google.protobuf.Struct",
  "google.protobuf.Value",
  "google.protobuf.ListValue",
  "google.protobuf.Any",
  "google.protobuf.FieldMask",
  "google.protobuf.Empty",
  "google.protobuf.StringValue",
  "google.protobuf.BoolValue",
  "google.protobuf.Int64Value",
  "google.protobuf.Int32Value",
  "google.protobuf.UInt32Value",
  "google.protobuf.UInt64Value",
  "google.protobuf.DoubleValue",
  "google.protobuf.FloatValue",
  "google.protobuf.BytesValue",
]);

const scalarName = (t: ScalarType): ScalarName => ScalarType[t].toLowerCase() as ScalarName;

export function describePublicApi(files: readonly DescFile[], registry: Registry): Catalogue {
  const policy = extensionNamed(files, "aegis.options.v1.policy");
  if (!policy) throw new Error("aegis.options.v1.policy is not among the plugin's files");
  const ext: Extensions = {
    policy,
    fieldBehavior: extensionNamed(files, "google.api.field_behavior"),
    validateField: extensionNamed(files, "buf.validate.field"),
  };

  const messages = new Map<string, DescMessage>();
  const enums = new Map<string, DescEnum>();
  const reach = (message: DescMessage) => {
    if (messages.has(message.typeName)) return;
    messages.set(message.typeName, message);
    // A nested type travels inside its parent: the parent is kept whole.
    if (message.parent) reach(message.parent);
    for (const field of message.fields) {
      if (field.message) reach(field.message);
      if (field.enum) reachEnum(field.enum);
    }
    for (const nested of message.nestedMessages) reach(nested);
    for (const nested of message.nestedEnums) enums.set(nested.typeName, nested);
  };
  const reachEnum = (e: DescEnum) => {
    enums.set(e.typeName, e);
    if (e.parent) reach(e.parent);
  };

  const services: ServiceDoc[] = [];
  const publicMethods = new Map<string, Set<string>>();
  for (const file of files) {
    for (const service of file.services) {
      const methods: MethodDoc[] = [];
      for (const method of service.methods) {
        const declared = policyOf(method, ext.policy);
        if (declared?.visibility !== visibilityPublic) continue;
        reach(method.input);
        reach(method.output);
        methods.push({
          service: service.typeName,
          name: method.name,
          path: `/${service.typeName}/${method.name}`,
          description: comment(method),
          input: method.input.typeName,
          output: method.output.typeName,
          streaming: method.methodKind,
          idempotency: idempotencies[method.idempotency],
          policy: declared.policy,
          example: exampleOf(method.input, (f) => behaviorsOf(f, ext)),
        });
      }
      if (methods.length === 0) continue;
      publicMethods.set(service.typeName, new Set(methods.map((m) => m.name)));
      services.push({ typeName: service.typeName, name: service.name, description: comment(service), methods });
    }
  }
  // The error details every refusal carries (AIP-193), for the browser to decode.
  for (const name of ["google.rpc.ErrorInfo", "google.rpc.BadRequest", "google.rpc.RetryInfo"]) {
    const detail = registry.getMessage(name);
    if (detail) reach(detail);
  }

  const messageDocs: Record<string, MessageDoc> = {};
  for (const [typeName, message] of [...messages].sort(([a], [b]) => a.localeCompare(b))) {
    messageDocs[typeName] = {
      typeName,
      name: message.name,
      description: comment(message),
      fields: message.fields.map((f) => fieldDoc(f, ext, registry)),
      ...(wellKnownJson.has(typeName) ? { wellKnown: typeName } : {}),
    };
  }
  const enumDocs: Record<string, EnumDoc> = {};
  for (const [typeName, e] of [...enums].sort(([a], [b]) => a.localeCompare(b))) {
    enumDocs[typeName] = {
      typeName,
      name: e.name,
      description: comment(e),
      values: e.values.map((v) => ({ name: v.name, number: v.number, description: comment(v) })),
    };
  }
  return {
    services,
    messages: messageDocs,
    enums: enumDocs,
    descriptorSet: publicDescriptorSet(files, publicMethods, new Set([...messages.keys(), ...enums.keys()])),
  };
}

function valueTypeOf(field: DescField): ValueType {
  if (field.fieldKind === "map") {
    if (field.mapKind === "message") return { kind: "message", typeName: field.message.typeName };
    if (field.mapKind === "enum") return { kind: "enum", typeName: field.enum.typeName };
    return { kind: "scalar", scalar: scalarName(field.scalar) };
  }
  if (field.message) return { kind: "message", typeName: field.message.typeName };
  if (field.enum) return { kind: "enum", typeName: field.enum.typeName };
  if (field.fieldKind === "scalar" || (field.fieldKind === "list" && field.listKind === "scalar")) {
    return { kind: "scalar", scalar: scalarName(field.scalar) };
  }
  throw new Error(`unknown field kind of ${(field as DescField).name}`);
}

function behaviorsOf(field: DescField, ext: Extensions): string[] {
  if (!ext.fieldBehavior || !hasOption(field, ext.fieldBehavior)) return [];
  const values = getOption(field, ext.fieldBehavior) as unknown as number[];
  const behaviorEnum = ext.fieldBehavior.enum;
  return values.map((v) => behaviorEnum?.values.find((x) => x.number === v)?.name ?? String(v));
}

function fieldDoc(field: DescField, ext: Extensions, registry: Registry): FieldDoc {
  const label =
    field.fieldKind === "map"
      ? "map"
      : field.fieldKind === "list"
        ? "repeated"
        : field.proto.proto3Optional
          ? "optional"
          : "singular";
  const behaviors = behaviorsOf(field, ext);
  let rules: unknown;
  if (ext.validateField && hasOption(field, ext.validateField) && ext.validateField.message) {
    const value = getOption(field, ext.validateField) as never;
    rules = toJson(ext.validateField.message, value, { registry });
  }
  return {
    name: field.name,
    jsonName: field.jsonName,
    number: field.number,
    description: comment(field),
    label,
    value: valueTypeOf(field),
    ...(field.fieldKind === "map" ? { mapKey: scalarName(field.mapKey) } : {}),
    ...(field.oneof && !field.proto.proto3Optional ? { oneof: field.oneof.name } : {}),
    behaviors,
    ...(rules === undefined ? {} : { rules }),
  };
}

/**
 * The public surface as a FileDescriptorSet: only files that define a type
 * a public method reaches, only public services and methods, no comments
 * (source info), no method or field options, no extensions. Nothing in it
 * names a private operation.
 */
function publicDescriptorSet(
  files: readonly DescFile[],
  publicMethods: ReadonlyMap<string, ReadonlySet<string>>,
  reached: ReadonlySet<string>,
): string {
  const kept: FileDescriptorProto[] = [];
  const keptNames = new Set<string>();
  const prefixOf = (file: DescFile) => (file.proto.package ? `${file.proto.package}.` : "");
  const messageKept = (prefix: string, m: DescriptorProto): boolean => reached.has(`${prefix}${m.name}`);
  for (const file of files) {
    const prefix = prefixOf(file);
    const proto = clone(FileDescriptorProtoSchema, file.proto);
    proto.sourceCodeInfo = undefined;
    proto.extension = [];
    proto.messageType = proto.messageType.filter((m) => messageKept(prefix, m));
    for (const m of proto.messageType) stripFieldOptions(m);
    proto.enumType = proto.enumType.filter((e) => reached.has(`${prefix}${e.name}`));
    proto.service = proto.service.filter((s) => publicMethods.has(`${prefix}${s.name}`));
    for (const s of proto.service) {
      const names = publicMethods.get(`${prefix}${s.name}`);
      s.method = s.method.filter((m) => names?.has(m.name));
      for (const m of s.method) m.options = undefined;
      s.options = undefined;
    }
    if (proto.messageType.length + proto.enumType.length + proto.service.length === 0) continue;
    kept.push(proto);
    keptNames.add(proto.name);
  }
  for (const proto of kept) {
    proto.dependency = proto.dependency.filter((d) => keptNames.has(d));
    proto.publicDependency = [];
    proto.weakDependency = [];
  }
  return Buffer.from(toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: kept }))).toString(
    "base64",
  );
}

function stripFieldOptions(message: DescriptorProto): void {
  for (const field of message.field) field.options = undefined;
  message.extension = [];
  for (const nested of message.nestedType) stripFieldOptions(nested);
  if (message.options && !message.options.mapEntry) message.options = undefined;
}
