// Who an operator or person command acts as, and against which broker. One
// set of options for every such command: an API key (from --key-file, or
// AEGIS_API_KEY) sent as a Bearer credential to --server (or AEGIS_SERVER);
// without a key, the session `aegis login` stored for --server (the default
// profile without), DPoP-bound, refreshed when near expiry. The key is read
// at call time and never printed.
import { readFileSync } from "node:fs";
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { type Command, Option } from "commander";
import { brokerTransport, parseServerUrl } from "./broker-connection.js";
import { UsageError } from "./failures.js";
import { dpopTransport, session } from "./login-commands.js";

export interface AccessOptions {
  server?: string;
  keyFile?: string;
  json?: boolean;
}

/** Adds --server, --key-file and --json, the options of every command that calls the broker. */
export function withBrokerAccess(command: Command): Command {
  return command
    .addOption(
      new Option("--server <url>", "the broker (default: the one you logged in to)")
        .env("AEGIS_SERVER")
        .argParser(parseServerUrl),
    )
    .option("--key-file <file>", "read the API key to act with from this file (else AEGIS_API_KEY, else your login)")
    .option("--json", "print JSON (the API's JSON form) instead of a table");
}

/** The help text every such command ends with: where its credential comes from. */
export const accessHelp = `
Authentication: the API key in --key-file or AEGIS_API_KEY (with --server or
AEGIS_SERVER), else the session of "aegis login".`;

function apiKey(options: AccessOptions): string | undefined {
  if (options.keyFile) {
    const key = readFileSync(options.keyFile, "utf8").trim();
    if (!key) throw new UsageError(`${options.keyFile} is empty (expected an API key)`);
    return key;
  }
  return process.env.AEGIS_API_KEY || undefined;
}

/** A client of `service` acting with the credential the options and environment name. */
export async function brokerClient<T extends DescService>(service: T, options: AccessOptions): Promise<Client<T>> {
  const key = apiKey(options);
  if (key) {
    if (!options.server) throw new UsageError("an API key needs --server URL (or AEGIS_SERVER)");
    const bearer: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${key}`);
      return next(req);
    };
    return createClient(service, brokerTransport(options.server, bearer));
  }
  return createClient(service, dpopTransport(await session(options.server)));
}
