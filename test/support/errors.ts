import { ConnectError } from "@connectrpc/connect";
import { ErrorDetailSchema } from "../../gen/proto/aegis/errors/v1/errors_pb.js";

/** The stable `reason` of an Aegis error (its ErrorDetail), if any. */
export function reasonOf(error: ConnectError | undefined): string | undefined {
  return error?.findDetails(ErrorDetailSchema)[0]?.reason;
}

/** The ConnectError a call failed with, or undefined when it succeeded. */
export function failure(call: Promise<unknown>): Promise<ConnectError | undefined> {
  return call.then(
    () => undefined,
    (error) => ConnectError.from(error),
  );
}
