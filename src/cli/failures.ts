// How a failed `aegis` command ends: which exit code (0 ok, 1 failure,
// 2 usage or configuration) and the one line a person reads on stderr. Every
// error reaching the top of the CLI goes through describeFailure, so a
// network error, a file error or a broker refusal reads as a sentence, never
// as a stack trace (AEGIS_DEBUG=1 asks for the stack). A refusal says the
// Connect code, the broker's message and its stable reason (the ErrorInfo
// of AIP-193), and ends with its own exit code when a script may want to
// tell it apart: 3 not found, 4 not allowed (permission denied or not
// authenticated).
import { Code, ConnectError } from "@connectrpc/connect";
import { CommanderError } from "commander";
import { ErrorInfoSchema } from "../../gen/proto/google/rpc/error_details_pb.js";

/** Wrong arguments found while the command runs: the message goes to stderr, exit 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * The broker's configuration (AEGIS_* variables, the root key) is wrong:
 * exit 2. server-commands.ts turns the broker's ConfigError into this, so
 * this module, shipped in the npm package without the broker, needs nothing of app/.
 */
export class ConfigurationFailure extends Error {
  override name = "ConfigurationFailure";
}

/** The broker could not be reached at all (refused, unknown host, timed out, TLS): exit 1. */
export class UnreachableError extends Error {
  override name = "UnreachableError";
  constructor(
    readonly server: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`could not reach ${server}: ${reason}`, options);
  }
}

/** The failure was reported already (in the broker's log): exit with `code`, print nothing more. */
export class ReportedFailure extends Error {
  override name = "ReportedFailure";
  constructor(readonly code: number) {
    super(`exit code ${code}`);
  }
}

export interface Failure {
  readonly exitCode: number;
  /** What to print after "aegis: ", or undefined when it was printed already. */
  readonly message: string | undefined;
}

export function describeFailure(error: unknown, debug: boolean): Failure {
  // Commander printed its own message (or the help) before throwing.
  if (error instanceof CommanderError) return { exitCode: error.exitCode === 0 ? 0 : 2, message: undefined };
  if (error instanceof ReportedFailure) return { exitCode: error.code, message: undefined };
  const exitCode = error instanceof UsageError || error instanceof ConfigurationFailure ? 2 : refusalExitCode(error);
  if (debug) return { exitCode, message: stackOf(error) };
  if (error instanceof ConfigurationFailure) return { exitCode, message: `configuration error: ${error.message}` };
  return { exitCode, message: oneLine(humanMessage(error)) };
}

/** The exit code of a broker refusal: 3 not found, 4 not allowed, 5 unavailable (unreachable or not serving), else 1. */
function refusalExitCode(error: unknown): number {
  if (error instanceof UnreachableError) return 5;
  if (!(error instanceof ConnectError)) return 1;
  if (error.cause instanceof UnreachableError || error.code === Code.Unavailable) return 5;
  if (error.code === Code.NotFound) return 3;
  if (error.code === Code.PermissionDenied || error.code === Code.Unauthenticated) return 4;
  return 1;
}

const fileProblems: Record<string, string> = {
  ENOENT: "no such file or directory",
  EEXIST: "already exists (not overwritten)",
  EACCES: "permission denied",
  EISDIR: "is a directory",
  ENOTDIR: "a part of the path is not a directory",
};

function humanMessage(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // Connect wraps what an interceptor throws (UnreachableError from broker-connection.ts).
  if (error instanceof ConnectError && error.cause instanceof UnreachableError) {
    return error.cause.message;
  }
  if (error instanceof ConnectError) {
    const reason = error.findDetails(ErrorInfoSchema)[0]?.reason;
    return `the broker answered ${error.message}${reason ? ` (reason: ${reason})` : ""}`;
  }
  const { code, path } = error as NodeJS.ErrnoException;
  const problem = code ? fileProblems[code] : undefined;
  if (problem && path) return `${path}: ${problem}`;
  return error.message;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

function stackOf(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error; e !== undefined && parts.length < 5; e = (e as Error).cause) {
    parts.push(e instanceof Error ? (e.stack ?? e.message) : String(e));
    if (!(e instanceof Error)) break;
  }
  return parts.join("\ncaused by: ");
}
