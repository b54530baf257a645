// gRPC server reflection against a running broker: `buf curl` without
// `--schema` lists and calls the public API over gRPC (h2c) and Connect;
// a reflection client sees every answer, in which no private service,
// method or type only private methods need ever appears.
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { create, createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ServerReflection,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
} from "../../gen/proto/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionAlpha } from "../../gen/proto/grpc/reflection/v1alpha/reflection_pb.js";
import { services } from "../../src/app/modules.js";
import { isPublicMethod } from "../../src/reflection/index.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { type Actor, createActor } from "../support/fixtures.js";

const run = promisify(execFile);
const buf = path.resolve("node_modules/.bin/buf");
const h2c = ["--protocol", "grpc", "--http2-prior-knowledge"];

const publicServices = services.filter((s) => s.methods.some(isPublicMethod));
const privateServices = services.filter((s) => !s.methods.some(isPublicMethod));
const privateMethods = services.flatMap((s) => s.methods.filter((m) => !isPublicMethod(m)));
/** Every name that must never reach a client: private services and methods, short and full. */
const privateNames = [
  ...privateServices.flatMap((s) => [s.typeName, s.name]),
  ...privateMethods.flatMap((m) => [`${m.parent.typeName}.${m.name}`, m.name]),
];

type Query = ServerReflectionRequest["messageRequest"];

describe("gRPC server reflection", () => {
  let t: TestBroker;
  let agent: Actor;

  beforeAll(async () => {
    t = await startTestBroker("pglite");
    agent = await createActor(t, { kind: "agent", name: "Reflecting agent" });
  });
  afterAll(() => t.stop());

  const curl = async (...args: string[]) => (await run(buf, ["curl", ...args], { timeout: 60_000 })).stdout;

  /** Sends each query on one reflection stream (v1 or v1alpha) and returns the answers in order. */
  async function reflect(queries: Query[], version: "v1" | "v1alpha" = "v1"): Promise<ServerReflectionResponse[]> {
    const client = t.client(version === "v1" ? ServerReflection : ServerReflectionAlpha, {
      protocol: "grpc",
      key: undefined,
    });
    async function* requests() {
      for (const messageRequest of queries) yield { host: "", messageRequest } as ServerReflectionRequest;
    }
    const answers: ServerReflectionResponse[] = [];
    for await (const answer of client.serverReflectionInfo(requests() as never)) {
      answers.push(answer as unknown as ServerReflectionResponse);
    }
    return answers;
  }

  it("has private names to hide (or this file tests nothing)", () => {
    expect(privateServices.map((s) => s.typeName)).toContain("aegis.tenant.v1.TenantService");
    expect(privateMethods.map((m) => m.name)).toContain("ListSigningKeys");
  });

  it("lets buf curl list the public services without --schema, over gRPC and Connect", async () => {
    const expected = publicServices.map((s) => s.typeName).sort();
    expect(expected).toContain("grpc.reflection.v1.ServerReflection");
    const overGrpc = (await curl(...h2c, "--list-services", t.broker.url)).trim().split("\n");
    expect(overGrpc).toEqual(expected);
    const overConnect = (await curl("--list-services", t.broker.url)).trim().split("\n");
    expect(overConnect).toEqual(expected);
    const overAlpha = await curl(...h2c, "--reflect-protocol", "grpc-v1alpha", "--list-services", t.broker.url);
    expect(overAlpha.trim().split("\n")).toEqual(expected);
  });

  it("lists public methods only", async () => {
    const methods = (await curl(...h2c, "--list-methods", t.broker.url)).trim().split("\n");
    const expected = publicServices.flatMap((s) =>
      s.methods.filter(isPublicMethod).map((m) => `${s.typeName}/${m.name}`),
    );
    expect(methods.sort()).toEqual(expected.sort());
    for (const name of privateNames) expect(methods.join("\n")).not.toContain(name);
  });

  it("lets buf curl call public methods from the reflected schema", async () => {
    const jwks = JSON.parse(await curl(...h2c, `${t.broker.url}/aegis.token.v1.TokenService/GetJwks`)) as {
      keys: { kid: string }[];
    };
    expect(jwks.keys.length).toBeGreaterThan(0);
    const whoami = JSON.parse(
      await curl(
        "-H",
        `authorization: Bearer ${agent.key}`,
        "-d",
        "{}",
        `${t.broker.url}/aegis.principal.v1.PrincipalService/WhoAmI`,
      ),
    ) as { principal: { id: string; displayName: string } };
    expect(whoami.principal).toMatchObject({ id: agent.principalId, displayName: "Reflecting agent" });
  });

  it("cannot resolve a private method for buf curl", async () => {
    const refused = curl(
      ...h2c,
      "-H",
      `authorization: Bearer ${t.adminKey}`,
      `${t.broker.url}/aegis.tenant.v1.TenantService/ListTenants`,
    );
    await expect(refused).rejects.toThrow(/aegis\.tenant\.v1\.TenantService/);
    await expect(refused).rejects.not.toThrow(/ListTenantsResponse|"tenants"/);
  });

  it("serves a consistent set of files holding every public method and nothing private", async () => {
    const answers = await reflect(publicServices.map((s) => ({ case: "fileContainingSymbol", value: s.typeName })));
    const files = new Map<string, Uint8Array>();
    for (const answer of answers) {
      expect(answer.messageResponse.case).toBe("fileDescriptorResponse");
      if (answer.messageResponse.case !== "fileDescriptorResponse") continue;
      for (const bytes of answer.messageResponse.value.fileDescriptorProto) {
        files.set(fromBinary(FileDescriptorProtoSchema, bytes).name, bytes);
      }
    }
    // Every import of every served file is served: the set builds as it is (imports first).
    const protos = [...files.values()].map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes));
    const ordered: typeof protos = [];
    const visit = (proto: (typeof protos)[number]) => {
      if (ordered.includes(proto)) return;
      for (const name of proto.dependency) {
        const dependency = protos.find((p) => p.name === name);
        expect(dependency, `${proto.name} imports ${name}`).toBeDefined();
        if (dependency) visit(dependency);
      }
      ordered.push(proto);
    };
    for (const proto of protos) visit(proto);
    const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: ordered }));
    for (const service of publicServices) {
      for (const method of service.methods.filter(isPublicMethod)) {
        expect(registry.getService(service.typeName)?.methods.map((m) => m.name)).toContain(method.name);
      }
    }
    expect(files.has("aegis/tenant/v1/tenant.proto")).toBe(false);
    const token = fromBinary(FileDescriptorProtoSchema, files.get("aegis/token/v1/token.proto") as Uint8Array);
    expect(token.messageType.map((m) => m.name)).toContain("GetJwksResponse");
    expect(token.messageType.map((m) => m.name)).not.toContain("ListSigningKeysRequest");
    // No private name in any byte of any file served.
    const text = [...files.values()].map((b) => Buffer.from(b).toString("latin1")).join("\n");
    for (const name of privateNames) expect(text, name).not.toContain(name);
  });

  it("answers every kind of query, and a private name exactly like an unknown one", async () => {
    const queries: Query[] = [
      { case: "listServices", value: "" },
      { case: "fileByFilename", value: "aegis/token/v1/token.proto" },
      { case: "fileContainingSymbol", value: "aegis.token.v1.TokenService.GetJwks" },
      { case: "fileContainingSymbol", value: "aegis.token.v1.GetJwksResponse" },
      {
        case: "fileContainingExtension",
        value: { containingType: "google.protobuf.MethodOptions", extensionNumber: 51001 },
      } as never,
      { case: "allExtensionNumbersOfType", value: "google.protobuf.MethodOptions" },
      { case: "fileContainingSymbol", value: "aegis.token.v1.TokenService.ListSigningKeys" },
      { case: "fileContainingSymbol", value: "aegis.token.v1.TokenService.NoSuchMethod" },
      { case: "fileContainingSymbol", value: "aegis.tenant.v1.TenantService" },
      { case: "fileByFilename", value: "aegis/tenant/v1/tenant.proto" },
      { case: "fileByFilename", value: "no/such/file.proto" },
      { case: "allExtensionNumbersOfType", value: "aegis.token.v1.ListSigningKeysRequest" },
      { case: undefined },
    ];
    for (const version of ["v1", "v1alpha"] as const) {
      const [list, byName, method, type, extension, numbers, ...refusals] = await reflect(queries, version);
      expect(list?.messageResponse.case).toBe("listServicesResponse");
      if (list?.messageResponse.case === "listServicesResponse") {
        expect(list.messageResponse.value.service.map((s) => s.name)).toEqual(
          publicServices.map((s) => s.typeName).sort(),
        );
      }
      const firstFile = (answer: ServerReflectionResponse | undefined) =>
        answer?.messageResponse.case === "fileDescriptorResponse"
          ? fromBinary(FileDescriptorProtoSchema, answer.messageResponse.value.fileDescriptorProto[0] as Uint8Array)
              .name
          : answer?.messageResponse.case;
      expect(firstFile(byName)).toBe("aegis/token/v1/token.proto");
      expect(firstFile(method)).toBe("aegis/token/v1/token.proto");
      expect(firstFile(type)).toBe("aegis/token/v1/token.proto");
      expect(firstFile(extension)).toBe("aegis/options/v1/options.proto");
      expect(
        numbers?.messageResponse.case === "allExtensionNumbersResponse" && numbers.messageResponse.value,
      ).toMatchObject({
        baseTypeName: "google.protobuf.MethodOptions",
        extensionNumber: expect.arrayContaining([51001]),
      });
      const errors = refusals.map((r) =>
        r.messageResponse.case === "errorResponse" ? r.messageResponse.value : r.messageResponse.case,
      );
      expect(errors.slice(0, 3)).toEqual([
        expect.objectContaining({ errorCode: Code.NotFound, errorMessage: "symbol not found" }),
        expect.objectContaining({ errorCode: Code.NotFound, errorMessage: "symbol not found" }),
        expect.objectContaining({ errorCode: Code.NotFound, errorMessage: "symbol not found" }),
      ]);
      expect(errors.slice(3, 5)).toEqual([
        expect.objectContaining({ errorCode: Code.NotFound, errorMessage: "file not found" }),
        expect.objectContaining({ errorCode: Code.NotFound, errorMessage: "file not found" }),
      ]);
      expect(errors[5]).toMatchObject({ errorCode: Code.NotFound });
      expect(errors[6]).toMatchObject({ errorCode: Code.InvalidArgument });
    }
  });
});
