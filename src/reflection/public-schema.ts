// The schema that server reflection describes: the broker's public API and
// nothing else. Built once from the served services' descriptors:
//
// - a service is listed when at least one of its methods is public; a
//   method without a policy counts as private (deny by default);
// - private methods are cut from the served file descriptors, and so is
//   every message and enum only they need: a type is kept when a public
//   method reaches it through fields, or an option vocabulary of a served
//   file does (the extensions declared in the files it imports);
// - a file none of whose contents is kept is not served at all, and served
//   files import only served files;
// - files outside `aegis.*` (descriptor.proto, protovalidate, google.api,
//   grpc health and reflection) hold nothing private and are served whole.
//
// Comments are not served (the generated descriptors carry none), so no
// text of a private method's documentation can leak either.
import {
  clone,
  type DescEnum,
  type DescExtension,
  type DescField,
  type DescFile,
  type DescMessage,
  type DescMethod,
  type DescService,
  toBinary,
} from "@bufbuild/protobuf";
import {
  type DescriptorProto,
  type EnumDescriptorProto,
  type FieldDescriptorProto,
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";

export interface PublicSchema {
  /** Full names of the listed services, sorted. */
  readonly services: readonly string[];
  /** Names of the served files (`aegis/token/v1/token.proto`). */
  readonly files: readonly string[];
  /** The file and every file it imports, transitively, the file first; undefined when not served. */
  withDependencies(fileName: string): Uint8Array[] | undefined;
  /** The served file declaring a symbol (service, method, message, field, enum, value, extension). */
  fileOfSymbol(symbol: string): string | undefined;
  /** The served file declaring the extension `number` of `extendee`. */
  fileOfExtension(extendee: string, number: number): string | undefined;
  /** The extension numbers served for a message type; undefined when the type is not served. */
  extensionNumbers(typeName: string): number[] | undefined;
}

export function publicSchema(
  services: readonly DescService[],
  isPublic: (method: DescMethod) => boolean,
): PublicSchema {
  const listed = services.filter((s) => s.methods.some(isPublic));
  const keep = new Kept();
  for (const service of listed) {
    keep.file(service.file);
    for (const method of service.methods.filter(isPublic)) {
      keep.type(method.input);
      keep.type(method.output);
    }
  }
  keep.settle();

  const served = new Map<string, FileDescriptorProto>();
  for (const file of keep.files) {
    served.set(
      file.proto.name,
      whole(file) ? clone(FileDescriptorProtoSchema, file.proto) : stripped(file, keep, isPublic),
    );
  }
  for (const proto of served.values()) onlyServedImports(proto, served);

  const bytes = new Map([...served].map(([name, proto]) => [name, toBinary(FileDescriptorProtoSchema, proto)]));
  const symbols = new Map<string, string>();
  const extensions = new Map<string, Map<number, string>>();
  for (const proto of served.values()) indexFile(proto, symbols, extensions);

  return {
    services: listed.map((s) => s.typeName).sort(),
    files: [...served.keys()].sort(),
    withDependencies(fileName) {
      if (!served.has(fileName)) return undefined;
      const order: string[] = [];
      const visit = (name: string) => {
        if (order.includes(name)) return;
        order.push(name);
        for (const dependency of served.get(name)?.dependency ?? []) visit(dependency);
      };
      visit(fileName);
      return order.map((name) => bytes.get(name) as Uint8Array);
    },
    fileOfSymbol: (symbol) => symbols.get(symbol.replace(/^\./, "")),
    fileOfExtension: (extendee, number) => extensions.get(extendee.replace(/^\./, ""))?.get(number),
    extensionNumbers(typeName) {
      const name = typeName.replace(/^\./, "");
      if (!symbols.has(name)) return undefined;
      return [...(extensions.get(name)?.keys() ?? [])].sort((a, b) => a - b);
    },
  };
}

/** Files of other authors' vocabularies, served as they are. */
const whole = (file: DescFile) => !file.proto.package.startsWith("aegis.");

/** What is kept: types by full name, extensions, and the files holding them. */
class Kept {
  readonly types = new Set<string>();
  readonly extensions = new Set<string>();
  readonly files = new Set<DescFile>();
  readonly #pending: (DescMessage | DescEnum)[] = [];

  file(file: DescFile): void {
    if (this.files.has(file)) return;
    this.files.add(file);
    if (!whole(file)) return;
    const all = (messages: readonly DescMessage[]) => {
      for (const m of messages) {
        this.type(m);
        all(m.nestedMessages);
        for (const e of m.nestedEnums) this.type(e);
        for (const x of m.nestedExtensions) this.extension(x);
      }
    };
    all(file.messages);
    for (const e of file.enums) this.type(e);
    for (const x of file.extensions) this.extension(x);
  }

  type(type: DescMessage | DescEnum): void {
    if (this.types.has(type.typeName)) return;
    this.types.add(type.typeName);
    this.#pending.push(type);
  }

  extension(extension: DescExtension): void {
    if (this.extensions.has(extension.typeName)) return;
    this.extensions.add(extension.typeName);
    this.file(extension.file);
    this.type(extension.extendee);
    if (extension.parent) this.type(extension.parent);
    const target = fieldType(extension);
    if (target) this.type(target);
  }

  /** Follows every kept type's fields, and the option vocabularies of the kept files' imports, until nothing changes. */
  settle(): void {
    for (;;) {
      const type = this.#pending.pop();
      if (type) {
        this.file(type.file);
        if (type.kind === "message") {
          if (type.parent) this.type(type.parent);
          for (const field of type.fields) {
            const target = fieldType(field);
            if (target) this.type(target);
          }
        } else if (type.parent) {
          this.type(type.parent);
        }
        continue;
      }
      const before = this.extensions.size + this.files.size;
      for (const file of [...this.files]) {
        for (const vocabulary of [file, ...file.dependencies]) {
          for (const extension of allExtensions(vocabulary)) this.extension(extension);
        }
      }
      if (this.#pending.length === 0 && this.extensions.size + this.files.size === before) return;
    }
  }
}

function allExtensions(file: DescFile): DescExtension[] {
  const nested = (messages: readonly DescMessage[]): DescExtension[] =>
    messages.flatMap((m) => [...m.nestedExtensions, ...nested(m.nestedMessages)]);
  return [...file.extensions, ...nested(file.messages)];
}

function fieldType(field: DescField | DescExtension): DescMessage | DescEnum | undefined {
  switch (field.fieldKind) {
    case "message":
      return field.message;
    case "enum":
      return field.enum;
    case "list":
      return field.listKind === "message" ? field.message : field.listKind === "enum" ? field.enum : undefined;
    case "map":
      return field.mapKind === "message" ? field.message : field.mapKind === "enum" ? field.enum : undefined;
    default:
      return undefined;
  }
}

/** An `aegis.*` file with only its public services' public methods and the kept types and extensions. */
function stripped(file: DescFile, keep: Kept, isPublic: (method: DescMethod) => boolean): FileDescriptorProto {
  const proto = clone(FileDescriptorProtoSchema, file.proto);
  const scope = proto.package ? `${proto.package}.` : "";
  const methodsOf = new Map(file.services.map((s) => [s.name, new Set(s.methods.filter(isPublic).map((m) => m.name))]));
  proto.service = proto.service
    .map((service) => {
      const kept = methodsOf.get(service.name) ?? new Set<string>();
      service.method = service.method.filter((m) => kept.has(m.name));
      return service;
    })
    .filter((service) => service.method.length > 0);
  proto.messageType = keptMessages(proto.messageType, scope, keep);
  proto.enumType = proto.enumType.filter((e) => keep.types.has(`${scope}${e.name}`));
  proto.extension = proto.extension.filter((x) => keep.extensions.has(`${scope}${x.name}`));
  proto.sourceCodeInfo = undefined;
  return proto;
}

function keptMessages(messages: DescriptorProto[], scope: string, keep: Kept): DescriptorProto[] {
  return messages
    .filter((m) => keep.types.has(`${scope}${m.name}`))
    .map((m) => {
      const inner = `${scope}${m.name}.`;
      // Map entries are nested types of their field, not types of their own.
      const entries = m.nestedType.filter((n) => n.options?.mapEntry);
      m.nestedType = [
        ...entries,
        ...keptMessages(
          m.nestedType.filter((n) => !n.options?.mapEntry),
          inner,
          keep,
        ),
      ];
      m.enumType = m.enumType.filter((e: EnumDescriptorProto) => keep.types.has(`${inner}${e.name}`));
      m.extension = m.extension.filter((x) => keep.extensions.has(`${inner}${x.name}`));
      return m;
    });
}

/** Drops imports of files that are not served (nothing kept refers to them), renumbering public and weak imports. */
function onlyServedImports(proto: FileDescriptorProto, served: ReadonlyMap<string, FileDescriptorProto>): void {
  const before = proto.dependency;
  const after = before.filter((name) => served.has(name));
  const reindex = (indexes: number[]) =>
    indexes.flatMap((i) => {
      const at = after.indexOf(before[i] as string);
      return at < 0 ? [] : [at];
    });
  proto.publicDependency = reindex(proto.publicDependency);
  proto.weakDependency = reindex(proto.weakDependency);
  proto.dependency = after;
}

/** Every symbol a served file declares, and its extensions by extendee and number. */
function indexFile(
  proto: FileDescriptorProto,
  symbols: Map<string, string>,
  extensions: Map<string, Map<number, string>>,
): void {
  const file = proto.name;
  const scope = proto.package ? `${proto.package}.` : "";
  const extension = (x: FieldDescriptorProto, at: string) => {
    symbols.set(`${at}${x.name}`, file);
    const extendee = x.extendee.replace(/^\./, "");
    const numbers = extensions.get(extendee) ?? new Map<number, string>();
    numbers.set(x.number, file);
    extensions.set(extendee, numbers);
  };
  const enumeration = (e: EnumDescriptorProto, at: string) => {
    symbols.set(`${at}${e.name}`, file);
    // Enum values are scoped beside their enum (C++ scoping rules).
    for (const value of e.value) symbols.set(`${at}${value.name}`, file);
  };
  const message = (m: DescriptorProto, at: string) => {
    const name = `${at}${m.name}`;
    symbols.set(name, file);
    for (const field of m.field) symbols.set(`${name}.${field.name}`, file);
    for (const oneof of m.oneofDecl) symbols.set(`${name}.${oneof.name}`, file);
    for (const nested of m.nestedType) message(nested, `${name}.`);
    for (const e of m.enumType) enumeration(e, `${name}.`);
    for (const x of m.extension) extension(x, `${name}.`);
  };
  for (const service of proto.service) {
    symbols.set(`${scope}${service.name}`, file);
    for (const method of service.method) symbols.set(`${scope}${service.name}.${method.name}`, file);
  }
  for (const m of proto.messageType) message(m, scope);
  for (const e of proto.enumType) enumeration(e, scope);
  for (const x of proto.extension) extension(x, scope);
}
