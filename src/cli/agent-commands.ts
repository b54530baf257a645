// `aegis agents …` (AgentService: the workloads of a tenant and their
// lifecycle, active ↔ suspended → revoked) and `aegis api-keys …`
// (ApiKeyService: the API keys of any principal). A new or rotated key's
// secret is printed once, on stdout only; the broker keeps only its hash.
import { create } from "@bufbuild/protobuf";
import type { Duration } from "@bufbuild/protobuf/wkt";
import { type Command, Option } from "commander";
import {
  type Agent,
  AgentSchema,
  AgentService,
  AgentStatus,
  ListAgentsResponseSchema,
} from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import {
  type ApiKey,
  ApiKeySchema,
  ApiKeyService,
  ListApiKeysResponseSchema,
} from "../../gen/proto/aegis/apikey/v1/apikey_pb.js";
import { type AccessOptions, accessHelp, brokerClient, withBrokerAccess } from "./broker-access.js";
import {
  enumName,
  formatTime,
  jsonOf,
  type PageOptions,
  printFields,
  printJson,
  printJsonValue,
  printPages,
  printResource,
  printTable,
  seconds,
  withPaging,
} from "./output.js";

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function agentStatus(agent: Agent): string {
  return enumName(AgentStatus, agent.status, "AGENT_STATUS_");
}

function printAgent(agent: Agent | undefined, json: boolean | undefined): void {
  printResource(AgentSchema, agent, json, (value) => {
    printFields([
      ["id", value.id],
      ["name", value.displayName],
      ["description", value.description],
      ["owner", value.ownerId],
      ["status", agentStatus(value)],
      ["scopes", value.scopes.join(" ")],
      ["created", formatTime(value.createTime)],
    ]);
  });
}

export function addAgentCommands(program: Command): void {
  const agents = program
    .command("agents")
    .summary("register agents, suspend, reactivate or revoke them")
    .description(
      "The agents (workloads) of your tenant: register them, list them, suspend, reactivate or revoke them (irreversible; their keys, tokens and leases end).",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ aegis agents register --name "deploy bot" --scope agent.list
  $ aegis agents list --status active
  $ aegis agents revoke prn_…`,
    );

  withBrokerAccess(
    agents
      .command("register")
      .summary("register an agent")
      .description(
        "Register an agent of your tenant, owned by you unless --owner. Give it an API key with api-keys create.",
      )
      .requiredOption("--name <name>", "display name")
      .option("--description <text>", "what the agent does")
      .option("--owner <person-id>", "the owning person (default: you)")
      .option("--scope <scope>", "a scope to grant it; you must hold it (repeatable)", collect),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis agents register --name "deploy bot" --scope agent.list`)
    .action(
      async (options: AccessOptions & { name: string; description?: string; owner?: string; scope?: string[] }) => {
        const client = await brokerClient(AgentService, options);
        const { agent } = await client.registerAgent({
          displayName: options.name,
          description: options.description ?? "",
          ownerId: options.owner ?? "",
          scopes: options.scope ?? [],
        });
        printAgent(agent, options.json);
      },
    );

  withPaging(
    withBrokerAccess(
      agents
        .command("list")
        .summary("list the agents of your tenant")
        .description("List the agents of your tenant, one page at a time (--all for every page).")
        .addOption(
          new Option("--status <status>", "only agents in this status").choices(["active", "suspended", "revoked"]),
        )
        .option("--owner <person-id>", "only agents of this owner"),
    ),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExamples:\n  $ aegis agents list\n  $ aegis agents list --status suspended --all`,
    )
    .action(async (options: AccessOptions & PageOptions & { status?: string; owner?: string }) => {
      const status = options.status
        ? AgentStatus[options.status.toUpperCase() as "ACTIVE" | "SUSPENDED" | "REVOKED"]
        : AgentStatus.UNSPECIFIED;
      const client = await brokerClient(AgentService, options);
      await printPages(
        options,
        ListAgentsResponseSchema,
        "agents",
        (pageToken, pageSize) => client.listAgents({ pageToken, pageSize, status, ownerId: options.owner ?? "" }),
        {
          header: ["id", "name", "owner", "status", "created"],
          row: (a) => [a.id, a.displayName, a.ownerId, agentStatus(a), formatTime(a.createTime)],
        },
      );
    });

  withBrokerAccess(agents.command("get").summary("show an agent").description("Show one agent.").argument("<id>"))
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis agents get prn_…`)
    .action(async (id: string, options: AccessOptions) => {
      const client = await brokerClient(AgentService, options);
      printAgent((await client.getAgent({ agentId: id })).agent, options.json);
    });

  type AgentClient = Awaited<ReturnType<typeof brokerClient<typeof AgentService>>>;
  const lifecycle: {
    verb: string;
    summary: string;
    call: (c: AgentClient, agentId: string) => Promise<{ agent?: Agent }>;
  }[] = [
    {
      verb: "suspend",
      summary: "suspend an agent: it cannot authenticate, its tokens stop working",
      call: (c, agentId) => c.suspendAgent({ agentId }),
    },
    {
      verb: "reactivate",
      summary: "reactivate a suspended agent",
      call: (c, agentId) => c.reactivateAgent({ agentId }),
    },
    {
      verb: "revoke",
      summary: "revoke an agent for good: its keys, tokens and leases end (irreversible)",
      call: (c, agentId) => c.revokeAgent({ agentId }),
    },
  ];
  for (const { verb, summary, call } of lifecycle) {
    withBrokerAccess(
      agents
        .command(verb)
        .summary(summary)
        .description(`${summary[0]?.toUpperCase()}${summary.slice(1)}.`)
        .argument("<id>"),
    )
      .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis agents ${verb} prn_…`)
      .action(async (id: string, options: AccessOptions) => {
        printAgent((await call(await brokerClient(AgentService, options), id)).agent, options.json);
      });
  }
}

function printKey(key: ApiKey | undefined): void {
  const value = key ?? create(ApiKeySchema);
  printFields([
    ["id", value.id],
    ["principal", value.principalId],
    ["label", value.label],
    ["prefix", value.prefix],
    ["created", formatTime(value.createTime)],
    ["expires", formatTime(value.expireTime) || "never"],
    ["revoked", formatTime(value.revokeTime)],
  ]);
}

/** A new secret: as JSON with its key, or set apart so it is not missed. */
function printSecret(key: ApiKey | undefined, secret: string, json: boolean | undefined, extra: object = {}): void {
  if (json) {
    printJsonValue({ key: jsonOf(ApiKeySchema, key ?? create(ApiKeySchema)), secret, ...extra });
    return;
  }
  printKey(key);
  process.stdout.write(`\nAPI key (shown only now; store it safely):\n  ${secret}\n`);
}

export function addApiKeyCommands(program: Command): void {
  const keys = program
    .command("api-keys")
    .summary("create, list, rotate and revoke API keys")
    .description(
      "API keys of the principals of your tenant (people and agents): create one (the secret is shown once), list them (metadata only), rotate with a grace period, revoke.",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ aegis api-keys create prn_… --label ci --ttl 86400
  $ aegis api-keys list prn_…
  $ aegis api-keys rotate KEY_ID --grace 3600`,
    );

  withBrokerAccess(
    keys
      .command("create")
      .summary("create an API key for a principal; prints the secret once")
      .description(
        "Create an API key for a principal of your tenant. The secret is printed once. Your credential must cover every grant of that principal.",
      )
      .argument("<principal-id>", "whose key (prn_…)")
      .option("--label <label>", "a label for people")
      .option("--ttl <seconds>", "lifetime in seconds (default: does not expire)", seconds),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis api-keys create prn_… --label ci --ttl 86400`)
    .action(async (principalId: string, options: AccessOptions & { label?: string; ttl?: Duration }) => {
      const client = await brokerClient(ApiKeyService, options);
      const { key, secret } = await client.createApiKey({
        principalId,
        label: options.label ?? "",
        ...(options.ttl ? { ttl: options.ttl } : {}),
      });
      printSecret(key, secret, options.json);
    });

  withBrokerAccess(
    keys
      .command("list")
      .summary("list a principal's API keys")
      .description("List the API keys of one principal: metadata only, never secrets.")
      .argument("<principal-id>", "whose keys (prn_…)"),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis api-keys list prn_…`)
    .action(async (principalId: string, options: AccessOptions) => {
      const { keys: items } = await (await brokerClient(ApiKeyService, options)).listApiKeys({ principalId });
      if (options.json) {
        printJson(ListApiKeysResponseSchema, create(ListApiKeysResponseSchema, { keys: items }));
        return;
      }
      printTable(
        ["id", "label", "prefix", "created", "expires", "last used", "revoked"],
        items.map((k) => [
          k.id,
          k.label,
          k.prefix,
          formatTime(k.createTime),
          formatTime(k.expireTime) || "never",
          formatTime(k.lastUseTime),
          formatTime(k.revokeTime),
        ]),
      );
    });

  withBrokerAccess(
    keys
      .command("rotate")
      .summary("replace an API key; the old one works for a grace period")
      .description(
        "Replace an API key with a new one (printed once); the old key keeps working for the grace period, then stops.",
      )
      .argument("<key-id>", "the key to replace")
      .option("--grace <seconds>", "how long the old key keeps working (default: the broker's)", seconds),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis api-keys rotate KEY_ID --grace 3600`)
    .action(async (keyId: string, options: AccessOptions & { grace?: Duration }) => {
      const client = await brokerClient(ApiKeyService, options);
      const { key, secret, previous } = await client.rotateApiKey({
        keyId,
        ...(options.grace ? { gracePeriod: options.grace } : {}),
      });
      printSecret(key, secret, options.json, {
        previous: jsonOf(ApiKeySchema, previous ?? create(ApiKeySchema)),
      });
      if (!options.json)
        process.stdout.write(`The old key ${previous?.id} works until ${formatTime(previous?.expireTime)}.\n`);
    });

  withBrokerAccess(
    keys.command("revoke").summary("revoke an API key").description("Revoke an API key at once.").argument("<key-id>"),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis api-keys revoke KEY_ID`)
    .action(async (keyId: string, options: AccessOptions) => {
      const { key } = await (await brokerClient(ApiKeyService, options)).revokeApiKey({ keyId });
      if (options.json) printJson(ApiKeySchema, key ?? create(ApiKeySchema));
      else printKey(key);
    });
}
