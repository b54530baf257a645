// `aegis grants …`: giving scopes to principals and taking them away
// (GrantService). A broker scope (an action with its selector) or, with
// --resource-server, a scope of that API's catalogue. The broker checks the
// no-escalation rule; the CLI only says what it answered.
import { create } from "@bufbuild/protobuf";
import type { Command } from "commander";
import {
  type Grant,
  GrantSchema,
  GrantService,
  ListGrantsResponseSchema,
} from "../../gen/proto/aegis/grant/v1/grant_pb.js";
import { type AccessOptions, accessHelp, brokerClient, withBrokerAccess } from "./broker-access.js";
import { formatTime, printFields, printJson, printResource, printTable } from "./output.js";

function printGrant(grant: Grant | undefined, json: boolean | undefined): void {
  printResource(GrantSchema, grant, json, (value) => {
    printFields([
      ["id", value.id],
      ["principal", value.principalId],
      ["scope", value.scope],
      ["resource server", value.resourceServerId || "broker"],
      ["granted by", value.grantedBy],
      ["created", formatTime(value.createTime)],
    ]);
  });
}

export function addGrantCommands(program: Command): void {
  const grants = program
    .command("grants")
    .summary("give scopes to principals and take them away")
    .description(
      "Give a scope to a principal (person, agent or service) of your tenant, list their grants, take one away. You can give only what your own grants cover.",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ aegis grants add prn_… repo.read --resource-server rsv_…
  $ aegis grants add prn_… credential.lease.redeem:provider:gcp:app:billing:account:deploy-bot
  $ aegis grants list prn_…
  $ aegis grants remove grt_…`,
    );

  withBrokerAccess(
    grants
      .command("add")
      .summary("give a scope to a principal")
      .description(
        "Give a scope to another principal of your tenant: a broker scope (action and selector), or with --resource-server one of that API's scopes. Giving a scope they hold already returns the existing grant.",
      )
      .argument("<principal-id>", "who receives it (prn_…)")
      .argument("<scope>", "the scope, e.g. repo.read or credential.lease.redeem:provider:gcp:app:billing:account:*")
      .option("--resource-server <id>", "the API whose scope this is (rsv_…); the broker's own when left out"),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExamples:\n  $ aegis grants add prn_… repo.read --resource-server rsv_…\n  $ aegis grants add prn_… agent.list`,
    )
    .action(async (principalId: string, scope: string, options: AccessOptions & { resourceServer?: string }) => {
      const client = await brokerClient(GrantService, options);
      const { grant } = await client.createGrant({
        principalId,
        scope,
        resourceServerId: options.resourceServer ?? "",
      });
      printGrant(grant, options.json);
    });

  withBrokerAccess(
    grants
      .command("list")
      .summary("list a principal's grants")
      .description("List every grant of one principal of your tenant, ordered by scope.")
      .argument("<principal-id>", "whose grants (prn_…)"),
  )
    .addHelpText("after", `${accessHelp}\n\nExamples:\n  $ aegis grants list prn_…\n  $ aegis grants list prn_… --json`)
    .action(async (principalId: string, options: AccessOptions) => {
      const client = await brokerClient(GrantService, options);
      const { grants: items } = await client.listGrants({ principalId });
      if (options.json) {
        printJson(ListGrantsResponseSchema, create(ListGrantsResponseSchema, { grants: items }));
        return;
      }
      printTable(
        ["id", "scope", "resource server", "granted by", "created"],
        items.map((g) => [g.id, g.scope, g.resourceServerId || "broker", g.grantedBy, formatTime(g.createTime)]),
      );
    });

  withBrokerAccess(
    grants
      .command("remove")
      .summary("take a grant away")
      .description(
        "Take a grant away. Tokens its holder was issued stop working at once, on every broker instance. You cannot take away your own grants.",
      )
      .argument("<grant-id>", "the grant (grt_…), as grants list shows it"),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis grants remove grt_…`)
    .action(async (grantId: string, options: AccessOptions) => {
      const client = await brokerClient(GrantService, options);
      await client.deleteGrant({ grantId });
      process.stdout.write(options.json ? "{}\n" : `removed ${grantId}\n`);
    });
}
