// `aegis people …`: the humans of a tenant (PersonService). Adding a person
// or re-issuing their enrollment prints the one-time enrollment code and
// link once, on stdout only: the broker keeps only its hash, and this CLI
// writes it nowhere else.
import { create } from "@bufbuild/protobuf";
import { type Command, Option } from "commander";
import {
  type Enrollment,
  EnrollmentSchema,
  ListPeopleResponseSchema,
  type Person,
  PersonSchema,
  PersonService,
  PersonStatus,
} from "../../gen/proto/aegis/person/v1/person_pb.js";
import { type AccessOptions, accessHelp, brokerClient, withBrokerAccess } from "./broker-access.js";
import {
  enumName,
  formatTime,
  jsonOf,
  type PageOptions,
  printFields,
  printJsonValue,
  printPages,
  printResource,
  withPaging,
} from "./output.js";

function status(person: Person): string {
  return enumName(PersonStatus, person.status, "PERSON_STATUS_");
}

function printPerson(person: Person | undefined, json: boolean | undefined): void {
  printResource(PersonSchema, person, json, (value) => {
    printFields([
      ["id", value.id],
      ["name", value.displayName],
      ["username", value.username],
      ["email", value.email],
      ["status", status(value)],
      ["enrolled", value.enrolled ? "yes" : "no"],
      ["enrollment expires", formatTime(value.enrollmentExpireTime)],
      ["scopes", value.scopes.join(" ")],
      ["created", formatTime(value.createTime)],
    ]);
  });
}

/** The person and their one-time code: as JSON together, or the code set apart so it is not missed. */
function printEnrollment(person: Person | undefined, enrollment: Enrollment | undefined, json?: boolean): void {
  if (json) {
    printJsonValue({
      person: jsonOf(PersonSchema, person ?? create(PersonSchema)),
      enrollment: jsonOf(EnrollmentSchema, enrollment ?? create(EnrollmentSchema)),
    });
    return;
  }
  printPerson(person, false);
  process.stdout.write(
    `\nOne-time enrollment code (shown only now; give it to ${person?.displayName || "the person"}):\n` +
      `  ${enrollment?.code}\n` +
      `Enrollment link: ${enrollment?.enrollmentUriComplete}\n` +
      `(or open ${enrollment?.enrollmentUri} and enter the code; it expires ${formatTime(enrollment?.expireTime)})\n`,
  );
}

export function addPeopleCommands(program: Command): void {
  const people = program
    .command("people")
    .summary("add people to your tenant, suspend or remove them")
    .description(
      "The people of your tenant: add them (they get a one-time enrollment code to choose a password), list them, suspend, reactivate or remove them.",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ aegis people add --name "Ada Lovelace" --email ada@example.com
  $ aegis people list --status active
  $ aegis people suspend prn_…`,
    );

  withBrokerAccess(
    people
      .command("add")
      .summary("add a person; prints their one-time enrollment code")
      .description(
        "Add a person to your tenant. Prints their one-time enrollment code and link once: give it to them, they open the link and choose a password. Give --username, --email or both.",
      )
      .requiredOption("--name <name>", "display name")
      .option("--username <username>", "sign-in name (3-64 of a-z 0-9 . _ @ -)")
      .option("--email <email>", "email address (also accepted as the sign-in name)")
      .option("--scope <scope>", "a scope to grant them; you must hold it (repeatable)", collect),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExample:\n  $ aegis people add --name "Ada Lovelace" --username ada --email ada@example.com`,
    )
    .action(async (options: AccessOptions & { name: string; username?: string; email?: string; scope?: string[] }) => {
      const client = await brokerClient(PersonService, options);
      const { person, enrollment } = await client.createPerson({
        displayName: options.name,
        username: options.username ?? "",
        email: options.email ?? "",
        scopes: options.scope ?? [],
      });
      printEnrollment(person, enrollment, options.json);
    });

  withPaging(
    withBrokerAccess(
      people
        .command("list")
        .summary("list the people of your tenant")
        .description("List the people of your tenant, one page at a time (--all for every page).")
        .addOption(
          new Option("--status <status>", "only people in this status").choices(["active", "suspended", "removed"]),
        ),
    ),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExamples:\n  $ aegis people list\n  $ aegis people list --status suspended --all`,
    )
    .action(async (options: AccessOptions & PageOptions & { status?: string }) => {
      const wanted = options.status
        ? PersonStatus[options.status.toUpperCase() as "ACTIVE" | "SUSPENDED" | "REMOVED"]
        : PersonStatus.UNSPECIFIED;
      const client = await brokerClient(PersonService, options);
      await printPages(
        options,
        ListPeopleResponseSchema,
        "people",
        (pageToken, pageSize) => client.listPeople({ pageToken, pageSize, status: wanted }),
        {
          header: ["id", "name", "username", "email", "status", "enrolled"],
          row: (p) => [p.id, p.displayName, p.username, p.email, status(p), p.enrolled ? "yes" : "no"],
        },
      );
    });

  withBrokerAccess(
    people.command("get").summary("show a person").description("Show one person of your tenant.").argument("<id>"),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis people get prn_…`)
    .action(async (id: string, options: AccessOptions) => {
      const client = await brokerClient(PersonService, options);
      printPerson((await client.getPerson({ personId: id })).person, options.json);
    });

  const lifecycle = [
    {
      verb: "suspend",
      summary: "suspend a person: they cannot sign in, their tokens stop working",
      description:
        "Suspend an active person: they cannot sign in or authenticate; their sessions, tokens, user API tokens, open enrollment and leases end at once.",
      call: (client: Awaited<ReturnType<typeof peopleClient>>, personId: string) => client.suspendPerson({ personId }),
    },
    {
      verb: "reactivate",
      summary: "reactivate a suspended person",
      description: "Reactivate a suspended person. What suspension ended stays ended; they sign in again.",
      call: (client: Awaited<ReturnType<typeof peopleClient>>, personId: string) =>
        client.reactivatePerson({ personId }),
    },
    {
      verb: "remove",
      summary: "remove a person for good",
      description:
        "Remove a person for good (irreversible): as suspension, and also their API keys, public keys and password. The record stays, for the audit trail.",
      call: (client: Awaited<ReturnType<typeof peopleClient>>, personId: string) => client.removePerson({ personId }),
    },
  ];
  for (const { verb, summary, description, call } of lifecycle) {
    withBrokerAccess(people.command(verb).summary(summary).description(description).argument("<id>"))
      .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis people ${verb} prn_…`)
      .action(async (id: string, options: AccessOptions) => {
        printPerson((await call(await peopleClient(options), id)).person, options.json);
      });
  }

  withBrokerAccess(
    people
      .command("enroll")
      .summary("issue a new one-time enrollment code")
      .description(
        "Issue a new one-time enrollment code for an active person (lost or expired code, forgotten password). Earlier codes stop working. Printed once.",
      )
      .argument("<id>"),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis people enroll prn_…`)
    .action(async (id: string, options: AccessOptions) => {
      const { person, enrollment } = await (await peopleClient(options)).issueEnrollment({ personId: id });
      printEnrollment(person, enrollment, options.json);
    });
}

function peopleClient(options: AccessOptions) {
  return brokerClient(PersonService, options);
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
