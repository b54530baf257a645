// `aegis agents keys add|list|revoke` (AgentService): an agent's public
// keys (or a person's own): signing keys for RFC 7523 assertions,
// encryption keys that credentials are sealed for. Rotate by adding the new
// key, then revoking the old one. Only public JWKs go to the broker; a
// private one is refused here, before anything is sent.
import { readFileSync } from "node:fs";
import { create } from "@bufbuild/protobuf";
import { type Command, Option } from "commander";
import {
  type AgentKey,
  AgentKeySchema,
  AgentService,
  KeyStatus,
  KeyUse,
  ListAgentKeysResponseSchema,
} from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { type AccessOptions, accessHelp, brokerClient, withBrokerAccess } from "./broker-access.js";
import { UsageError } from "./failures.js";
import { enumName, formatTime, printFields, printJson, printResource, printTable } from "./output.js";

function printKey(key: AgentKey | undefined, json: boolean | undefined): void {
  printResource(AgentKeySchema, key, json, (value) => {
    printFields([
      ["id", value.id],
      ["agent", value.agentId],
      ["use", enumName(KeyUse, value.use, "KEY_USE_")],
      ["algorithm", value.alg],
      ["thumbprint", value.thumbprint],
      ["status", enumName(KeyStatus, value.status, "KEY_STATUS_")],
      ["added", formatTime(value.createTime)],
    ]);
  });
}

async function stdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** The public JWK to register, from --jwk-file or stdin; a private key never leaves this machine. */
async function publicJwk(file: string | undefined): Promise<string> {
  const text = (file ? readFileSync(file, "utf8") : await stdin()).trim();
  let jwk: Record<string, unknown>;
  try {
    jwk = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new UsageError(`${file ?? "stdin"} is not a JWK (not JSON)`);
  }
  if ("d" in jwk || "p" in jwk || "k" in jwk) {
    throw new UsageError("that is a private key: register the public JWK (aegis key generate prints it on stdout)");
  }
  return text;
}

/** Adds `keys` under `aegis agents`. */
export function addAgentKeyCommands(program: Command): void {
  const agents = program.commands.find((command) => command.name() === "agents");
  if (!agents) throw new Error("aegis agents must be defined before its keys");
  const keys = agents
    .command("keys")
    .summary("add, list and revoke an agent's public keys")
    .description(
      "An agent's public keys: signing keys for RFC 7523 assertions, and encryption keys that credentials are sealed for. Rotate by adding the new key, then revoking the old one. A person registers their own with their principal id.",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ aegis key generate --out bot.jwk > bot.public.jwk
  $ aegis agents keys add prn_… --use encryption --jwk-file bot.public.jwk
  $ aegis agents keys list prn_…
  $ aegis agents keys revoke kid_…`,
    );

  withBrokerAccess(
    keys
      .command("add")
      .summary("register a public key for an agent")
      .description(
        "Register a public JWK (from --jwk-file, or stdin) for the agent: --use signing or encryption. A private JWK is refused before anything is sent.",
      )
      .argument("<agent-id>", "the agent (prn_…)")
      .addOption(
        new Option("--use <use>", "what the key is for").choices(["signing", "encryption"]).makeOptionMandatory(),
      )
      .option("--jwk-file <file>", "the public JWK (else read from stdin)")
      .option("--alg <alg>", "JWA algorithm (default: derived from the key)"),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExample:\n  $ aegis agents keys add prn_… --use encryption --jwk-file bot.public.jwk`,
    )
    .action(async (agentId: string, options: AccessOptions & { use: string; jwkFile?: string; alg?: string }) => {
      const jwkJson = await publicJwk(options.jwkFile);
      const { key } = await (await brokerClient(AgentService, options)).addAgentKey({
        agentId,
        use: options.use === "signing" ? KeyUse.SIGNING : KeyUse.ENCRYPTION,
        jwkJson,
        alg: options.alg ?? "",
      });
      printKey(key, options.json);
    });

  withBrokerAccess(
    keys
      .command("list")
      .summary("list an agent's keys")
      .description("List the agent's public keys, active and revoked.")
      .argument("<agent-id>", "the agent (prn_…)"),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis agents keys list prn_…`)
    .action(async (agentId: string, options: AccessOptions) => {
      const { keys: listed } = await (await brokerClient(AgentService, options)).listAgentKeys({ agentId });
      if (options.json) {
        printJson(ListAgentKeysResponseSchema, create(ListAgentKeysResponseSchema, { keys: listed }));
        return;
      }
      printTable(
        ["id", "use", "alg", "status", "thumbprint"],
        listed.map((k) => [
          k.id,
          enumName(KeyUse, k.use, "KEY_USE_"),
          k.alg,
          enumName(KeyStatus, k.status, "KEY_STATUS_"),
          k.thumbprint,
        ]),
      );
    });

  withBrokerAccess(
    keys
      .command("revoke")
      .summary("revoke a key")
      .description("Revoke one public key of an agent: assertions signed with it are refused from then on.")
      .argument("<key-id>", "the key (kid_…)"),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis agents keys revoke kid_…`)
    .action(async (keyId: string, options: AccessOptions) => {
      const { key } = await (await brokerClient(AgentService, options)).revokeAgentKey({ keyId });
      printKey(key, options.json);
    });
}
