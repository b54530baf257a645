// `aegis tokens mint|user-token|introspect|revoke` (TokenService). A minted token goes
// to stdout alone, so it can be captured (`TOKEN=$(aegis tokens mint …)`); a
// token to introspect or revoke is read from stdin, never from the command
// line (shell history, process list).
import type { Duration } from "@bufbuild/protobuf/wkt";
import type { Command } from "commander";
import {
  IntrospectTokenResponseSchema,
  MintTokenResponseSchema,
  MintUserApiTokenResponseSchema,
  TokenService,
} from "../../gen/proto/aegis/token/v1/token_pb.js";
import { type AccessOptions, accessHelp, brokerClient, withBrokerAccess } from "./broker-access.js";
import { UsageError } from "./failures.js";
import { formatTime, printFields, printJson, seconds } from "./output.js";

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

async function tokenFromStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const token = Buffer.concat(chunks).toString("utf8").trim();
  if (!token) throw new UsageError("no token on stdin");
  return token;
}

export function addTokenCommands(program: Command): void {
  const tokens = program
    .command("tokens")
    .summary("mint, introspect and revoke tokens; make user API tokens")
    .description(
      "Mint a short-lived broker token for a registered API (or the broker) with scopes you hold, introspect a token, revoke one by jti or token.",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ TOKEN=$(aegis tokens mint --audience payments --scope repo.read --lifetime 300)
  $ aegis tokens user-token --scope credential.read:provider:gcp --ttl 86400 --label ci > ci.token
  $ echo "$TOKEN" | aegis tokens introspect
  $ aegis tokens revoke --jti 0f3c…`,
    );

  withBrokerAccess(
    tokens
      .command("mint")
      .summary("mint a broker token; prints the token alone")
      .description(
        "Mint a broker token for --audience (a resource server's identifier, or the broker's URL) with scopes of its catalogue that you were granted. Prints the token alone (with --json: the whole answer, jti and expiry included).",
      )
      .requiredOption("--audience <identifier>", "the API the token is for")
      .option("--scope <scope>", "a scope to carry (repeatable)", collect)
      .option("--lifetime <seconds>", "lifetime (default: the API's)", seconds),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExample:\n  $ TOKEN=$(aegis tokens mint --audience payments --scope repo.read --lifetime 300)`,
    )
    .action(async (options: AccessOptions & { audience: string; scope?: string[]; lifetime?: Duration }) => {
      const client = await brokerClient(TokenService, options);
      const answer = await client.mintToken({
        audience: options.audience,
        scopes: options.scope ?? [],
        ...(options.lifetime ? { lifetime: options.lifetime } : {}),
      });
      if (options.json) printJson(MintTokenResponseSchema, answer);
      else process.stdout.write(`${answer.accessToken}\n`);
    });

  withBrokerAccess(
    tokens
      .command("user-token")
      .summary("make a user API token for yourself; prints the secret alone")
      .description(
        "Make a user API token: a long-lived secret for scripts and tools that acts as you, narrowed to --scope (never more than you hold), for the broker or for --audience (a resource server's identifier). Prints the secret alone, once (with --json: its id and expiry too); store it like a password.",
      )
      .requiredOption("--scope <scope>", "a scope to carry (repeatable)", collect)
      .option("--ttl <seconds>", "lifetime (default: the broker's)", seconds)
      .option("--label <label>", "what it is for, shown in lists")
      .option("--audience <identifier>", "the API it is for (default: the broker)"),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExample:\n  $ aegis tokens user-token --scope credential.read:provider:gcp --ttl 86400 --label ci > ci.token`,
    )
    .action(async (options: AccessOptions & { scope: string[]; ttl?: Duration; label?: string; audience?: string }) => {
      const answer = await (await brokerClient(TokenService, options)).mintUserApiToken({
        scopes: options.scope,
        ...(options.ttl ? { ttl: options.ttl } : {}),
        label: options.label ?? "",
        audience: options.audience ?? "",
      });
      if (options.json) printJson(MintUserApiTokenResponseSchema, answer);
      else process.stdout.write(`${answer.secret}\n`);
    });

  withBrokerAccess(
    tokens
      .command("introspect")
      .summary("introspect a token read from stdin")
      .description(
        "Say whether a token (read from stdin) is active, and its claims (RFC 7662). Needs introspect.token, or being the token's audience.",
      ),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ echo "$TOKEN" | aegis tokens introspect`)
    .action(async (options: AccessOptions) => {
      const token = await tokenFromStdin();
      const answer = await (await brokerClient(TokenService, options)).introspectToken({ token });
      if (options.json) {
        printJson(IntrospectTokenResponseSchema, answer);
        return;
      }
      printFields([
        ["active", answer.active ? "yes" : "no"],
        ["subject", answer.sub],
        ["audience", answer.aud],
        ["scope", answer.scope],
        ["tenant", answer.tenantId],
        ["jti", answer.jti],
        ["issued", formatTime(answer.iat)],
        ["expires", formatTime(answer.exp)],
        ["bound to", answer.cnfJkt],
      ]);
    });

  withBrokerAccess(
    tokens
      .command("revoke")
      .summary("revoke a token by --jti, or one read from stdin")
      .description(
        "Revoke a broker token by its jti, or the token read from stdin: it stops working on every instance.",
      )
      .option("--jti <jti>", "the token's jti (else the token is read from stdin)"),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExamples:\n  $ aegis tokens revoke --jti 0f3c…\n  $ echo "$TOKEN" | aegis tokens revoke`,
    )
    .action(async (options: AccessOptions & { jti?: string }) => {
      const request = options.jti ? { jti: options.jti } : { token: await tokenFromStdin() };
      await (await brokerClient(TokenService, options)).revokeToken(request);
      process.stdout.write(options.json ? "{}\n" : "revoked\n");
    });
}
