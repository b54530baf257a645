// `aegis tenants create|list` (TenantService), for operators. A new
// tenant's first admin gets a one-time enrollment code, printed once.
import { create } from "@bufbuild/protobuf";
import type { Command } from "commander";
import { EnrollmentSchema, PersonSchema } from "../../gen/proto/aegis/person/v1/person_pb.js";
import { ListTenantsResponseSchema, TenantSchema, TenantService } from "../../gen/proto/aegis/tenant/v1/tenant_pb.js";
import { type AccessOptions, accessHelp, brokerClient, withBrokerAccess } from "./broker-access.js";
import { formatTime, jsonOf, type PageOptions, printFields, printJsonValue, printPages, withPaging } from "./output.js";

export function addTenantCommands(program: Command): void {
  const tenants = program
    .command("tenants")
    .summary("create and list tenants (operators)")
    .description(
      "Create tenants, each with its first admin person (who gets a one-time enrollment code), and list them. Needs the operators' rights.",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ aegis tenants create acme --display-name "Acme Corp" --admin-email ops@acme.example
  $ aegis tenants list`,
    );

  withBrokerAccess(
    tenants
      .command("create")
      .summary("create a tenant and its first admin; prints the admin's enrollment code once")
      .description(
        "Create a tenant with its first admin person, and print the admin's one-time enrollment code and link once.",
      )
      .argument("<name>", "unique name, e.g. acme")
      .option("--display-name <name>", "human-readable name (default: <name>)")
      .option("--admin-name <name>", "the first admin's display name (default: Administrator)")
      .option("--admin-username <username>", "the first admin's sign-in name (default: admin)")
      .option("--admin-email <email>", "the first admin's email"),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis tenants create acme --admin-email ops@acme.example`)
    .action(
      async (
        name: string,
        options: AccessOptions & {
          displayName?: string;
          adminName?: string;
          adminUsername?: string;
          adminEmail?: string;
        },
      ) => {
        const answer = await (await brokerClient(TenantService, options)).createTenant({
          name,
          displayName: options.displayName ?? "",
          adminDisplayName: options.adminName ?? "",
          adminUsername: options.adminUsername ?? "",
          adminEmail: options.adminEmail ?? "",
        });
        if (options.json) {
          printJsonValue({
            tenant: jsonOf(TenantSchema, answer.tenant ?? create(TenantSchema)),
            admin: jsonOf(PersonSchema, answer.admin ?? create(PersonSchema)),
            adminEnrollment: jsonOf(EnrollmentSchema, answer.adminEnrollment ?? create(EnrollmentSchema)),
            loginClientId: answer.loginClientId,
          });
          return;
        }
        printFields([
          ["id", answer.tenant?.id],
          ["name", answer.tenant?.name],
          ["display name", answer.tenant?.displayName],
          ["admin", `${answer.admin?.displayName} (${answer.admin?.id})`],
          ["login client", answer.loginClientId],
        ]);
        const enrollment = answer.adminEnrollment;
        process.stdout.write(
          "\nThe admin's one-time enrollment code (shown only now):\n" +
            `  ${enrollment?.code}\n` +
            `Enrollment link: ${enrollment?.enrollmentUriComplete}\n` +
            `(or open ${enrollment?.enrollmentUri} and enter the code; it expires ${formatTime(enrollment?.expireTime)})\n`,
        );
      },
    );

  withPaging(
    withBrokerAccess(
      tenants
        .command("list")
        .summary("list tenants")
        .description("List the tenants, one page at a time (--all for every page)."),
    ),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis tenants list --all`)
    .action(async (options: AccessOptions & PageOptions) => {
      const client = await brokerClient(TenantService, options);
      await printPages(
        options,
        ListTenantsResponseSchema,
        "tenants",
        (pageToken, pageSize) => client.listTenants({ pageToken, pageSize }),
        {
          header: ["id", "name", "display name", "created"],
          row: (t) => [t.id, t.name, t.displayName, formatTime(t.createTime)],
        },
      );
    });
}
