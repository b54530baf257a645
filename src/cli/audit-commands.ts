// `aegis audit list|tail|verify` (AuditService): the hash-chained audit
// trail, filtered and paged or followed live, and the check that it was not
// tampered with.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Command, InvalidArgumentError, Option } from "commander";
import {
  type AuditEvent,
  AuditEventSchema,
  AuditService,
  Outcome,
  QueryAuditEventsResponseSchema,
  VerifyAuditChainResponseSchema,
} from "../../gen/proto/aegis/audit/v1/audit_pb.js";
import { type AccessOptions, accessHelp, brokerClient, withBrokerAccess } from "./broker-access.js";
import { enumName, formatTime, jsonOf, type PageOptions, printJson, printPages, withPaging } from "./output.js";

interface FilterOptions {
  actor?: string;
  action?: string;
  outcome?: string;
  tenant?: string;
}

/** Adds the filters `list` and `tail` share. */
function withFilters(command: Command): Command {
  return command
    .option("--actor <principal-id>", "only events of this actor")
    .option("--action <action>", "only this action, e.g. grant.create")
    .addOption(new Option("--outcome <outcome>", "only this outcome").choices(["success", "denied"]))
    .option("--tenant <tenant-id>", "only this tenant (operators only)");
}

function filterOf(options: FilterOptions) {
  return {
    tenantId: options.tenant ?? "",
    actorId: options.actor ?? "",
    action: options.action ?? "",
    outcome: options.outcome ? Outcome[options.outcome.toUpperCase() as "SUCCESS" | "DENIED"] : Outcome.UNSPECIFIED,
  };
}

const header = ["seq", "time", "actor", "action", "target", "outcome", "reason"];
const row = (e: AuditEvent) => [
  String(e.seq),
  formatTime(e.time),
  e.actorId,
  e.action,
  e.target,
  enumName(Outcome, e.outcome, "OUTCOME_"),
  e.reason,
];

function instant(value: string): Date {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new InvalidArgumentError("expected a time such as 2026-01-31T12:00:00Z");
  return date;
}

function sequence(value: string): bigint {
  if (!/^\d{1,19}$/.test(value)) throw new InvalidArgumentError("expected a sequence number");
  return BigInt(value);
}

export function addAuditCommands(program: Command): void {
  const audit = program
    .command("audit")
    .summary("read, follow and verify the audit trail")
    .description(
      "Read the hash-chained audit trail (every state change and every refusal) and verify that it was not tampered with.",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ aegis audit list --action grant.create --outcome denied
  $ aegis audit tail --outcome denied
  $ aegis audit verify`,
    );

  withPaging(
    withFilters(
      withBrokerAccess(
        audit
          .command("list")
          .summary("list audit events matching filters")
          .description("List audit events matching the filters, one page at a time (--all for every page).")
          .option("--since <time>", "only events at or after this time (ISO 8601)", instant)
          .option("--until <time>", "only events before this time (ISO 8601)", instant),
      ),
    ),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExamples:\n  $ aegis audit list --action grant.create --outcome denied\n  $ aegis audit list --since 2026-01-31T00:00:00Z --all --json`,
    )
    .action(async (options: AccessOptions & PageOptions & FilterOptions & { since?: Date; until?: Date }) => {
      const filter = {
        ...filterOf(options),
        ...(options.since ? { startTime: timestampFromDate(options.since) } : {}),
        ...(options.until ? { endTime: timestampFromDate(options.until) } : {}),
      };
      const client = await brokerClient(AuditService, options);
      await printPages(
        options,
        QueryAuditEventsResponseSchema,
        "events",
        (pageToken, pageSize) => client.queryAuditEvents({ filter, pageToken, pageSize }),
        {
          header: header,
          row: row,
        },
      );
    });

  withFilters(
    withBrokerAccess(
      audit
        .command("tail")
        .summary("follow audit events as they are written")
        .description(
          "Print matching audit events as any instance writes them, until interrupted (Ctrl-C). --after replays stored events after that sequence number first. One line per event; with --json one JSON object per line.",
        )
        .option("--after <seq>", "first replay the stored events after this sequence number", sequence),
    ),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExamples:\n  $ aegis audit tail --outcome denied\n  $ aegis audit tail --after 1200 --json | jq .action`,
    )
    .action(async (options: AccessOptions & FilterOptions & { after?: bigint }) => {
      const client = await brokerClient(AuditService, options);
      const stop = new AbortController();
      process.once("SIGINT", () => stop.abort());
      const stream = client.tailAuditEvents(
        { filter: filterOf(options), afterSeq: options.after ?? 0n },
        { signal: stop.signal },
      );
      try {
        for await (const { event } of stream) {
          if (!event) continue;
          const line = options.json ? JSON.stringify(jsonOf(AuditEventSchema, event)) : row(event).join("  ");
          process.stdout.write(`${line}\n`);
        }
      } catch (error) {
        if (!stop.signal.aborted) throw error;
      }
    });

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
