// `aegis audit list|verify` (AuditService): the hash-chained audit trail,
// filtered and paged, and the check that it was not tampered with.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Command, InvalidArgumentError, Option } from "commander";
import {
  AuditService,
  Outcome,
  QueryAuditEventsResponseSchema,
  VerifyAuditChainResponseSchema,
} from "../../gen/proto/aegis/audit/v1/audit_pb.js";
import { type AccessOptions, accessHelp, brokerClient, withBrokerAccess } from "./broker-access.js";
import { enumName, fetchPages, formatTime, type PageOptions, printJson, printTable, withPaging } from "./output.js";

function instant(value: string): Date {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new InvalidArgumentError("expected a time such as 2026-01-31T12:00:00Z");
  return date;
}

export function addAuditCommands(program: Command): void {
  const audit = program
    .command("audit")
    .summary("read and verify the audit trail")
    .description(
      "Read the hash-chained audit trail (every state change and every refusal) and verify that it was not tampered with.",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ aegis audit list --action grant.create --outcome denied
  $ aegis audit verify`,
    );

  withPaging(
    withBrokerAccess(
      audit
        .command("list")
        .summary("list audit events matching filters")
        .description("List audit events matching the filters, one page at a time (--all for every page).")
        .option("--actor <principal-id>", "only events of this actor")
        .option("--action <action>", "only this action, e.g. grant.create")
        .addOption(new Option("--outcome <outcome>", "only this outcome").choices(["success", "denied"]))
        .option("--since <time>", "only events at or after this time (ISO 8601)", instant)
        .option("--until <time>", "only events before this time (ISO 8601)", instant)
        .option("--tenant <tenant-id>", "only this tenant (operators only)"),
    ),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExamples:\n  $ aegis audit list --action grant.create --outcome denied\n  $ aegis audit list --since 2026-01-31T00:00:00Z --all --json`,
    )
    .action(
      async (
        options: AccessOptions &
          PageOptions & {
            actor?: string;
            action?: string;
            outcome?: string;
            since?: Date;
            until?: Date;
            tenant?: string;
          },
      ) => {
        const filter = {
          tenantId: options.tenant ?? "",
          actorId: options.actor ?? "",
          action: options.action ?? "",
          outcome: options.outcome
            ? Outcome[options.outcome.toUpperCase() as "SUCCESS" | "DENIED"]
            : Outcome.UNSPECIFIED,
          ...(options.since ? { startTime: timestampFromDate(options.since) } : {}),
          ...(options.until ? { endTime: timestampFromDate(options.until) } : {}),
        };
        const client = await brokerClient(AuditService, options);
        const { items, nextPageToken } = await fetchPages(options, async (pageToken, pageSize) => {
          const page = await client.queryAuditEvents({ filter, pageToken, pageSize });
          return { items: page.events, nextPageToken: page.nextPageToken };
        });
        if (options.json) {
          printJson(
            QueryAuditEventsResponseSchema,
            create(QueryAuditEventsResponseSchema, { events: items, nextPageToken }),
          );
          return;
        }
        printTable(
          ["seq", "time", "actor", "action", "target", "outcome", "reason"],
          items.map((e) => [
            String(e.seq),
            formatTime(e.time),
            e.actorId,
            e.action,
            e.target,
            enumName(Outcome, e.outcome, "OUTCOME_"),
            e.reason,
          ]),
        );
      },
    );

  withBrokerAccess(
    audit
      .command("verify")
      .summary("verify the audit hash chain")
      .description("Verify the audit trail's hash chain; exits 1 when it is broken, naming the first bad event."),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis audit verify`)
    .action(async (options: AccessOptions) => {
      const answer = await (await brokerClient(AuditService, options)).verifyAuditChain({});
      if (options.json) printJson(VerifyAuditChainResponseSchema, answer);
      else if (answer.intact) process.stdout.write(`intact: ${answer.eventsChecked} events checked\n`);
      else process.stdout.write(`BROKEN at event ${answer.firstBadSeq}: ${answer.problem}\n`);
      if (!answer.intact) process.exitCode = 1;
    });
}
