// The one place that turns failures into Connect errors. Domain codes map
// exhaustively (a new DomainErrorCode that is not mapped fails to compile);
// database errors that mean a clash or a race become domain errors
// (./database-error.ts); a ConnectError raised by the framework passes
// through; anything else is a bug and goes out as a bare `internal`, its
// message kept for the log only.
//
// Every error carries the standard google.rpc details (AIP-193), so grpcurl,
// buf curl and any gRPC client decode them without Aegis protos:
//
// - `ErrorInfo`, always: the stable UPPER_SNAKE reason, the domain
//   `aegis.broker`, and now and then a little metadata the domain code chose
//   to send (never a secret, never the log-only detail);
// - `BadRequest`, for bad input: one field violation per invalid field;
// - `RetryInfo`, when the client is told how long to wait (the same delay
//   as the `Retry-After` header).
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  BadRequest_FieldViolationSchema,
  BadRequestSchema,
  ErrorInfoSchema,
  RetryInfoSchema,
} from "../../../gen/proto/google/rpc/error_details_pb.js";
import { fromDatabaseError } from "./database-error.js";
import { DomainError, type DomainErrorCode } from "./domain-error.js";

/** `ErrorInfo.domain` of every Aegis error: the reasons are unique within it. */
export const errorDomain = "aegis.broker";

const connectCodes = {
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  unauthenticated: Code.Unauthenticated,
  permission_denied: Code.PermissionDenied,
  failed_precondition: Code.FailedPrecondition,
  aborted: Code.Aborted,
  resource_exhausted: Code.ResourceExhausted,
  deadline_exceeded: Code.DeadlineExceeded,
  unavailable: Code.Unavailable,
} as const satisfies Record<DomainErrorCode, Code>;

type Details = NonNullable<ConstructorParameters<typeof ConnectError>[3]>;

function errorInfo(reason: string, metadata: Readonly<Record<string, string>> = {}): Details[number] {
  return { desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason, domain: errorDomain, metadata }) };
}

/** Retry-After in delta-seconds (RFC 9110 §10.2.3), the only form the broker sends. */
function retryAfterMs(headers: Readonly<Record<string, string>> | undefined): number | undefined {
  const value = headers && new Headers(headers).get("retry-after");
  return value && /^\d+$/.test(value) ? Number(value) * 1000 : undefined;
}

function detailsOf(error: DomainError): Details {
  const details = [errorInfo(error.reason, error.metadata)];
  if (error.fieldViolations.length > 0) {
    const fieldViolations = error.fieldViolations.map(({ field, description }) =>
      create(BadRequest_FieldViolationSchema, { field, description }),
    );
    details.push({ desc: BadRequestSchema, value: create(BadRequestSchema, { fieldViolations }) });
  }
  const retryMs = retryAfterMs(error.options.headers);
  if (retryMs !== undefined) {
    details.push({ desc: RetryInfoSchema, value: create(RetryInfoSchema, { retryDelay: durationFromMs(retryMs) }) });
  }
  return details;
}

/** `DeadlineExceeded` → `DEADLINE_EXCEEDED`: the reason of a framework error, in the style of ours. */
function reasonOfCode(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** Converts any thrown value into the ConnectError sent to the client. */
export function toConnectError(thrown: unknown): ConnectError {
  const error = fromDatabaseError(thrown) ?? thrown;
  if (error instanceof DomainError) {
    return new ConnectError(error.message, connectCodes[error.code], error.options.headers, detailsOf(error), error);
  }
  if (error instanceof ConnectError) {
    // Raised by the framework or a standard service (deadline, cancellation,
    // grpc.health's NOT_FOUND): kept as it is, with an ErrorInfo like ours.
    if (error.findDetails(ErrorInfoSchema).length === 0) error.details.push(errorInfo(reasonOfCode(error.code)));
    return error;
  }
  return new ConnectError("internal error", Code.Internal, undefined, [errorInfo("INTERNAL")], error);
}

/** The machine-readable reason of an error as sent (its ErrorInfo), for logs and audit. */
export function reasonOf(error: ConnectError): string {
  return error.findDetails(ErrorInfoSchema)[0]?.reason ?? reasonOfCode(error.code);
}
