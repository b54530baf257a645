// `aegis resource-servers …`: the APIs a tenant protects with broker tokens
// (ResourceServerService), their scope catalogues and token policy. Scopes
// are never deleted: `scopes deprecate` stops new grants and tokens carrying
// them while tokens in flight keep working (UpdateResourceServer), and
// `scopes restore` makes them grantable again.
import { create } from "@bufbuild/protobuf";
import type { Duration } from "@bufbuild/protobuf/wkt";
import { type Command, InvalidArgumentError } from "commander";
import {
  ListResourceServersResponseSchema,
  type ResourceScope,
  ResourceScopeSchema,
  type ResourceServer,
  ResourceServerSchema,
  ResourceServerService,
} from "../../gen/proto/aegis/resourceserver/v1/resource_server_pb.js";
import { type AccessOptions, accessHelp, brokerClient, withBrokerAccess } from "./broker-access.js";
import {
  formatDuration,
  type PageOptions,
  printFields,
  printPages,
  printResource,
  printTable,
  seconds,
  withPaging,
} from "./output.js";

/** `name` or `name=description`, as --scope and `scopes add` take them. */
function parseScope(value: string): ResourceScope {
  const at = value.indexOf("=");
  const name = at < 0 ? value : value.slice(0, at);
  if (!name) throw new InvalidArgumentError("expected name or name=description");
  return create(ResourceScopeSchema, { name, description: at < 0 ? "" : value.slice(at + 1) });
}

function collectScope(value: string, previous: ResourceScope[] = []): ResourceScope[] {
  return [...previous, parseScope(value)];
}

function printResourceServer(server: ResourceServer | undefined, json: boolean | undefined): void {
  printResource(ResourceServerSchema, server, json, (value) => {
    printFields([
      ["id", value.id],
      ["identifier", value.identifier],
      ["name", value.displayName],
      ["description", value.description],
      ["default lifetime", formatDuration(value.defaultTokenLifetime, "broker default")],
      ["max lifetime", formatDuration(value.maxTokenLifetime, "broker default")],
      ["require DPoP", value.requireDpop ? "yes" : "no"],
      ["principal", value.principalId],
    ]);
    process.stdout.write("\n");
    printTable(
      ["scope", "status", "description"],
      value.scopes.map((scope) => [scope.name, scope.deprecated ? "deprecated" : "active", scope.description]),
    );
  });
}

export function addResourceServerCommands(program: Command): void {
  const servers = program
    .command("resource-servers")
    .summary("register the APIs you protect, and their scopes")
    .description(
      "Register the APIs (resource servers) your tenant protects with broker tokens: identifier (the token audience), scope catalogue, token lifetimes and DPoP policy.",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ aegis resource-servers create payments --name "Payments API" --scope repo.read="read repositories"
  $ aegis resource-servers list
  $ aegis resource-servers scopes add rsv_… repo.write="push to repositories"`,
    );

  withBrokerAccess(
    servers
      .command("create")
      .summary("register an API")
      .description(
        "Register an API of your tenant. <identifier> is its token audience (RFC 8707 resource), e.g. payments or https://api.example.com. You receive the admin right over it.",
      )
      .argument("<identifier>", "the token audience, unique across the broker")
      .requiredOption("--name <name>", "display name")
      .option("--description <text>", "what the API is")
      .option("--scope <name[=description]>", "a scope of its catalogue (repeatable)", collectScope)
      .option("--default-lifetime <seconds>", "token lifetime when a request names none", seconds)
      .option("--max-lifetime <seconds>", "longest token lifetime", seconds)
      .option("--require-dpop", "mint only DPoP-bound tokens for it"),
  )
    .addHelpText(
      "after",
      `${accessHelp}

Example:
  $ aegis resource-servers create payments --name "Payments API" \\
      --scope repo.read="read repositories" --scope model:invoke --max-lifetime 900`,
    )
    .action(
      async (
        identifier: string,
        options: AccessOptions & {
          name: string;
          description?: string;
          scope?: ResourceScope[];
          defaultLifetime?: Duration;
          maxLifetime?: Duration;
          requireDpop?: boolean;
        },
      ) => {
        const client = await brokerClient(ResourceServerService, options);
        const { resourceServer } = await client.createResourceServer({
          identifier,
          displayName: options.name,
          description: options.description ?? "",
          scopes: options.scope ?? [],
          ...(options.defaultLifetime ? { defaultTokenLifetime: options.defaultLifetime } : {}),
          ...(options.maxLifetime ? { maxTokenLifetime: options.maxLifetime } : {}),
          requireDpop: options.requireDpop ?? false,
        });
        printResourceServer(resourceServer, options.json);
      },
    );

  withPaging(
    withBrokerAccess(
      servers
        .command("list")
        .summary("list the APIs of your tenant")
        .description("List the resource servers of your tenant, one page at a time (--all for every page)."),
    ),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExamples:\n  $ aegis resource-servers list\n  $ aegis resource-servers list --all --json`,
    )
    .action(async (options: AccessOptions & PageOptions) => {
      const client = await brokerClient(ResourceServerService, options);
      await printPages(
        options,
        ListResourceServersResponseSchema,
        "resourceServers",
        (pageToken, pageSize) => client.listResourceServers({ pageToken, pageSize }),
        {
          header: ["id", "identifier", "name", "scopes", "dpop"],
          row: (s) => [
            s.id,
            s.identifier,
            s.displayName,
            String(s.scopes.filter((scope) => !scope.deprecated).length),
            s.requireDpop ? "required" : "",
          ],
        },
      );
    });

  withBrokerAccess(
    servers
      .command("get")
      .summary("show an API and its scopes")
      .description(
        "Show one resource server of your tenant with its scope catalogue; id broker shows the broker's own.",
      )
      .argument("<id>", "the resource server's id (rsv_…), or broker"),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExamples:\n  $ aegis resource-servers get rsv_…\n  $ aegis resource-servers get broker --json`,
    )
    .action(async (id: string, options: AccessOptions) => {
      const client = await brokerClient(ResourceServerService, options);
      printResourceServer((await client.getResourceServer({ resourceServerId: id })).resourceServer, options.json);
    });

  const scopes = servers
    .command("scopes")
    .summary("add, deprecate or restore scopes of an API")
    .description(
      "Change an API's scope catalogue. Scopes are deprecated, never deleted: a deprecated scope can no longer be granted or asked for, and tokens in flight keep working until they expire.",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ aegis resource-servers scopes add rsv_… repo.write="push to repositories"
  $ aegis resource-servers scopes deprecate rsv_… repo.write
  $ aegis resource-servers scopes restore rsv_… repo.write`,
    );

  withBrokerAccess(
    scopes
      .command("add")
      .summary("add scopes to an API's catalogue")
      .description(
        "Add scopes to an API's catalogue; for a name already there, its description is replaced. Needs the admin right over the API.",
      )
      .argument("<id>", "the resource server's id")
      .argument("<scopes...>", "name or name=description, one or more"),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExample:\n  $ aegis resource-servers scopes add rsv_… repo.write="push to repositories" sync:write`,
    )
    .action(async (id: string, names: string[], options: AccessOptions) => {
      const client = await brokerClient(ResourceServerService, options);
      const { resourceServer } = await client.updateResourceServer({
        resourceServerId: id,
        addScopes: names.map(parseScope),
      });
      printResourceServer(resourceServer, options.json);
    });

  withBrokerAccess(
    scopes
      .command("deprecate")
      .summary("deprecate scopes of an API (the way to remove them)")
      .description(
        "Deprecate scopes: they can no longer be granted or asked for; tokens in flight keep working until they expire. Needs the admin right over the API.",
      )
      .argument("<id>", "the resource server's id")
      .argument("<names...>", "scope names, one or more"),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis resource-servers scopes deprecate rsv_… repo.write`)
    .action(async (id: string, names: string[], options: AccessOptions) => {
      const client = await brokerClient(ResourceServerService, options);
      const { resourceServer } = await client.updateResourceServer({ resourceServerId: id, deprecateScopes: names });
      printResourceServer(resourceServer, options.json);
    });

  withBrokerAccess(
    scopes
      .command("restore")
      .summary("make deprecated scopes grantable again")
      .description("Restore deprecated scopes of an API. Needs the admin right over the API.")
      .argument("<id>", "the resource server's id")
      .argument("<names...>", "scope names, one or more"),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis resource-servers scopes restore rsv_… repo.write`)
    .action(async (id: string, names: string[], options: AccessOptions) => {
      const client = await brokerClient(ResourceServerService, options);
      const { resourceServer } = await client.updateResourceServer({ resourceServerId: id, restoreScopes: names });
      printResourceServer(resourceServer, options.json);
    });

  withBrokerAccess(
    servers
      .command("delete")
      .summary("delete an API")
      .description(
        "Delete a resource server and its principal. Refused while grants of its scopes exist, unless --force: then those grants are taken away too and their holders' earlier tokens stop working.",
      )
      .argument("<id>", "the resource server's id")
      .option("--force", "also take away every grant of its scopes"),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExamples:\n  $ aegis resource-servers delete rsv_…\n  $ aegis resource-servers delete rsv_… --force`,
    )
    .action(async (id: string, options: AccessOptions & { force?: boolean }) => {
      const client = await brokerClient(ResourceServerService, options);
      await client.deleteResourceServer({ resourceServerId: id, force: options.force ?? false });
      if (options.json) process.stdout.write("{}\n");
      else process.stdout.write(`deleted ${id}\n`);
    });
}
