import { ConnectError } from "@connectrpc/connect";

/** The ConnectError a call failed with, or undefined when it succeeded. */
export function failure(call: Promise<unknown>): Promise<ConnectError | undefined> {
  return call.then(
    () => undefined,
    (error) => ConnectError.from(error),
  );
}
