// `aegis roles …`: named sets of scopes given to principals at once
// (RoleService). The built-in roles (tenant_admin, member, auditor) are
// listed with the custom ones; assigning follows the same no-escalation
// rule as giving each scope, which the broker checks.
import { create } from "@bufbuild/protobuf";
import { type Command, InvalidArgumentError } from "commander";
import {
  ListRolesResponseSchema,
  type Role,
  RoleAssignmentSchema,
  RoleSchema,
  type RoleScope,
  RoleService,
} from "../../gen/proto/aegis/role/v1/role_pb.js";
import { type AccessOptions, accessHelp, brokerClient, withBrokerAccess } from "./broker-access.js";
import {
  formatTime,
  type PageOptions,
  printFields,
  printJson,
  printPages,
  printResource,
  withPaging,
} from "./output.js";

/** `--scope agent.read` (a broker scope) or `--scope rsv_…:repo.read` (a scope of that API). */
function collectScope(value: string, previous: { scope: string; resourceServerId: string }[] = []) {
  const match = /^(rsv_[a-z2-7]{20}):(.+)$/.exec(value);
  if (value.trim() === "") throw new InvalidArgumentError("a scope is required");
  return [
    ...previous,
    match ? { resourceServerId: match[1] ?? "", scope: match[2] ?? "" } : { resourceServerId: "", scope: value },
  ];
}

const scopeText = (s: RoleScope) => (s.resourceServerId ? `${s.resourceServerId}:${s.scope}` : s.scope);

function printRole(role: Role | undefined, json: boolean | undefined): void {
  printResource(RoleSchema, role, json, (value) => {
    printFields([
      ["id", value.id],
      ["name", value.name],
      ["built in", value.builtIn ? "yes" : "no"],
      ["description", value.description],
      ["scopes", value.scopes.map(scopeText).join(" ")],
      ["updated", formatTime(value.updateTime)],
    ]);
  });
}

export function addRoleCommands(program: Command): void {
  const roles = program
    .command("roles")
    .summary("named sets of scopes, given to principals at once")
    .description(
      "List the built-in roles (tenant_admin, member, auditor) and your tenant's own, define roles, and assign them. Assigning a role gives its scopes under the same rule as giving each one: you give only what your own grants cover.",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ aegis roles list
  $ aegis roles create release-bot --scope agent.read --scope rsv_…:repo.read
  $ aegis roles assign prn_… release-bot-role-id
  $ aegis roles unassign prn_… auditor`,
    );

  withPaging(
    withBrokerAccess(
      roles
        .command("list")
        .summary("list roles")
        .description("List the built-in roles and your tenant's own, one page at a time."),
    ),
  )
    .addHelpText("after", `${accessHelp}\n\nExamples:\n  $ aegis roles list\n  $ aegis roles list --all --json`)
    .action(async (options: AccessOptions & PageOptions) => {
      const client = await brokerClient(RoleService, options);
      await printPages(
        options,
        ListRolesResponseSchema,
        "roles",
        (pageToken, pageSize) => client.listRoles({ pageToken, pageSize }),
        {
          header: ["id", "name", "built in", "scopes"],
          row: (r) => [r.id, r.name, r.builtIn ? "yes" : "", String(r.scopes.length)],
        },
      );
    });

  withBrokerAccess(
    roles.command("get").summary("show one role and its scopes").argument("<role-id>", "a role id, or a built-in name"),
  )
    .addHelpText("after", `${accessHelp}\n\nExamples:\n  $ aegis roles get auditor\n  $ aegis roles get rol_… --json`)
    .action(async (roleId: string, options: AccessOptions) => {
      const client = await brokerClient(RoleService, options);
      printRole((await client.getRole({ roleId })).role, options.json);
    });

  withBrokerAccess(
    roles
      .command("create")
      .summary("define a role of your tenant")
      .argument("<name>", "lower-case name, e.g. release-bot")
      .option("--description <text>", "what the role is for")
      .option(
        "--scope <scope>",
        "a broker scope, or <resource-server-id>:<scope> for an API's (repeatable)",
        collectScope,
      ),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExample:\n  $ aegis roles create release-bot --description "ships releases" --scope agent.read --scope rsv_…:repo.read`,
    )
    .action(
      async (
        name: string,
        options: AccessOptions & { description?: string; scope?: { scope: string; resourceServerId: string }[] },
      ) => {
        const client = await brokerClient(RoleService, options);
        const { role } = await client.createRole({
          name,
          description: options.description ?? "",
          scopes: options.scope ?? [],
        });
        printRole(role, options.json);
      },
    );

  withBrokerAccess(
    roles
      .command("delete")
      .summary("delete a role of your tenant")
      .argument("<role-id>", "the role (rol_…)")
      .option("--force", "also unassign it from everyone who holds it"),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis roles delete rol_… --force`)
    .action(async (roleId: string, options: AccessOptions & { force?: boolean }) => {
      const client = await brokerClient(RoleService, options);
      await client.deleteRole({ roleId, force: options.force ?? false });
      process.stdout.write(options.json ? "{}\n" : `deleted ${roleId}\n`);
    });

  for (const [verb, summary] of [
    ["assign", "give a principal a role's scopes"],
    ["unassign", "take back what a role gave a principal"],
  ] as const) {
    withBrokerAccess(
      roles
        .command(verb)
        .summary(summary)
        .argument("<principal-id>", "who (prn_…)")
        .argument("<role-id>", "a role id, or a built-in name"),
    )
      .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis roles ${verb} prn_… auditor`)
      .action(async (principalId: string, roleId: string, options: AccessOptions) => {
        const client = await brokerClient(RoleService, options);
        if (verb === "unassign") {
          await client.unassignRole({ principalId, roleId });
          process.stdout.write(options.json ? "{}\n" : `unassigned ${roleId} from ${principalId}\n`);
          return;
        }
        const { assignment, givenScopes } = await client.assignRole({ principalId, roleId });
        if (options.json) return printJson(RoleAssignmentSchema, assignment ?? create(RoleAssignmentSchema));
        printFields([
          ["assignment", assignment?.id],
          ["role", assignment?.roleId],
          ["principal", assignment?.principalId],
          ["given", givenScopes.map(scopeText).join(" ")],
        ]);
      });
  }
}
