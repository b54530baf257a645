// gRPC server reflection (grpc/doc/server-reflection.md), v1 and the older
// v1alpha that many tools still ask for first: one bidirectional stream on
// which each request gets one answer, from the public schema only
// (./public-schema.ts). A name the schema does not hold (unknown, or
// private) gets NOT_FOUND, the same answer either way. v1alpha's messages
// are v1's with the same field numbers, so its answers are v1's re-read.
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  ServerReflection,
  type ServerReflectionRequest,
  ServerReflectionRequestSchema,
  type ServerReflectionResponse,
  ServerReflectionResponseSchema,
} from "../../gen/proto/grpc/reflection/v1/reflection_pb.js";
import {
  ServerReflectionRequestSchema as AlphaRequestSchema,
  ServerReflectionResponseSchema as AlphaResponseSchema,
  ServerReflection as ServerReflectionAlpha,
} from "../../gen/proto/grpc/reflection/v1alpha/reflection_pb.js";
import type { PublicSchema } from "./public-schema.js";

export { ServerReflection, ServerReflectionAlpha };

export function reflectionService(schema: () => PublicSchema): ServiceImpl<typeof ServerReflection> {
  return {
    async *serverReflectionInfo(requests) {
      for await (const request of fromClient(requests)) yield answer(schema(), request);
    },
  };
}

export function reflectionServiceAlpha(schema: () => PublicSchema): ServiceImpl<typeof ServerReflectionAlpha> {
  return {
    async *serverReflectionInfo(requests) {
      for await (const request of fromClient(requests)) {
        const v1 = fromBinary(ServerReflectionRequestSchema, toBinary(AlphaRequestSchema, request));
        yield fromBinary(AlphaResponseSchema, toBinary(ServerReflectionResponseSchema, answer(schema(), v1)));
      }
    },
  };
}

/**
 * The client's requests; a client that hangs up without ending its side
 * (most tools, once they have what they asked for) has cancelled the call,
 * which is no failure of ours.
 */
async function* fromClient<T>(requests: AsyncIterable<T>): AsyncIterable<T> {
  try {
    yield* requests;
  } catch (error) {
    if (error instanceof ConnectError) throw error;
    throw new ConnectError("the client closed the stream", Code.Canceled, undefined, undefined, error);
  }
}

type Answer = ServerReflectionResponse["messageResponse"];

/** The answer to one request of the stream. */
export function answer(schema: PublicSchema, request: ServerReflectionRequest): ServerReflectionResponse {
  return {
    $typeName: "grpc.reflection.v1.ServerReflectionResponse",
    validHost: request.host,
    originalRequest: request,
    messageResponse: respond(schema, request.messageRequest),
  };
}

function respond(schema: PublicSchema, request: ServerReflectionRequest["messageRequest"]): Answer {
  switch (request.case) {
    case "listServices":
      return {
        case: "listServicesResponse",
        value: {
          $typeName: "grpc.reflection.v1.ListServiceResponse",
          service: schema.services.map((name) => ({ $typeName: "grpc.reflection.v1.ServiceResponse", name })),
        },
      };
    case "fileByFilename":
      return files(schema.withDependencies(request.value), "file not found");
    case "fileContainingSymbol": {
      const file = schema.fileOfSymbol(request.value);
      return files(file === undefined ? undefined : schema.withDependencies(file), "symbol not found");
    }
    case "fileContainingExtension": {
      const file = schema.fileOfExtension(request.value.containingType, request.value.extensionNumber);
      return files(file === undefined ? undefined : schema.withDependencies(file), "extension not found");
    }
    case "allExtensionNumbersOfType": {
      const numbers = schema.extensionNumbers(request.value);
      if (numbers === undefined) return error(Code.NotFound, "type not found");
      return {
        case: "allExtensionNumbersResponse",
        value: {
          $typeName: "grpc.reflection.v1.ExtensionNumberResponse",
          baseTypeName: request.value.replace(/^\./, ""),
          extensionNumber: numbers,
        },
      };
    }
    default:
      return error(Code.InvalidArgument, "the request names no known reflection query");
  }
}

function files(found: Uint8Array[] | undefined, notFound: string): Answer {
  if (found === undefined) return error(Code.NotFound, notFound);
  return {
    case: "fileDescriptorResponse",
    value: { $typeName: "grpc.reflection.v1.FileDescriptorResponse", fileDescriptorProto: found },
  };
}

/** gRPC status codes are Connect's codes, number for number. */
function error(code: Code, message: string): Answer {
  return {
    case: "errorResponse",
    value: { $typeName: "grpc.reflection.v1.ErrorResponse", errorCode: code, errorMessage: message },
  };
}
