// The one place that turns failures into Connect errors. Domain codes map
// exhaustively (a new DomainErrorCode that is not mapped fails to compile);
// database errors that mean a clash or a race become domain errors
// (./database-error.ts); a ConnectError raised by the framework passes
// through; anything else is a bug and goes out as a bare `internal`, its
// message kept for the log only.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorDetailSchema, FieldViolationSchema } from "../../../gen/proto/aegis/errors/v1/errors_pb.js";
import { fromDatabaseError } from "./database-error.js";
import { DomainError, type DomainErrorCode } from "./domain-error.js";

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

/** Converts any thrown value into the ConnectError sent to the client. */
export function toConnectError(thrown: unknown): ConnectError {
  const error = fromDatabaseError(thrown) ?? thrown;
  if (error instanceof DomainError) {
    const detail = create(ErrorDetailSchema, {
      reason: error.reason,
      fieldViolations: error.fieldViolations.map((v) => create(FieldViolationSchema, v)),
    });
    return new ConnectError(
      error.message,
      connectCodes[error.code],
      error.options.headers,
      [{ desc: ErrorDetailSchema, value: detail }],
      error,
    );
  }
  if (error instanceof ConnectError) return error;
  return new ConnectError(
    "internal error",
    Code.Internal,
    undefined,
    [{ desc: ErrorDetailSchema, value: create(ErrorDetailSchema, { reason: "INTERNAL" }) }],
    error,
  );
}

/** The machine-readable reason of an error as sent, for logs and audit. */
export function reasonOf(error: ConnectError): string {
  return error.findDetails(ErrorDetailSchema)[0]?.reason ?? Code[error.code];
}
