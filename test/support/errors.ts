import { ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/proto/google/rpc/error_details_pb.js";

/** The stable `reason` of an Aegis error (its google.rpc.ErrorInfo), if any. */
export function reasonOf(error: ConnectError | undefined): string | undefined {
  return error?.findDetails(ErrorInfoSchema)[0]?.reason;
}

/** The field violations of a bad-input error (its google.rpc.BadRequest), as `{ field, description }`. */
export function fieldViolationsOf(error: ConnectError | undefined): { field: string; description: string }[] {
  return (error?.findDetails(BadRequestSchema)[0]?.fieldViolations ?? []).map(({ field, description }) => ({
    field,
    description,
  }));
}

/** The ConnectError a call failed with, or undefined when it succeeded. */
export function failure(call: Promise<unknown>): Promise<ConnectError | undefined> {
  return call.then(
    () => undefined,
    (error) => ConnectError.from(error),
  );
}
