// `aegis leases …` (LeaseService): single- or few-use leases on a
// credential, for yourself or handed to an agent (--holder, bound to its
// DPoP key with --holder-jkt). Creating, redeeming and revoking need a DPoP
// proof, so they run on the session of `aegis login` (DPoP-bound); reading
// works with an API key too. A redeemed credential is printed sealed, as the
// broker returns it: only `aegis credential open` with the holder's private
// key turns it into the secret.
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { type Command, InvalidArgumentError, Option } from "commander";
import {
  type Lease,
  LeaseSchema,
  LeaseService,
  LeaseState,
  ListLeasesResponseSchema,
  RedeemLeaseResponseSchema,
} from "../../gen/proto/aegis/lease/v1/lease_pb.js";
import { type AccessOptions, accessHelp, brokerClient, withBrokerAccess } from "./broker-access.js";
import {
  enumName,
  formatTime,
  type PageOptions,
  printFields,
  printJson,
  printPages,
  printResource,
  withPaging,
} from "./output.js";

const dpopHelp = `
Needs a DPoP proof: run it on the session of "aegis login" (an API key
alone is refused with DPOP_REQUIRED).`;

function count(max: number, unit: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`expected 1 to ${max} ${unit}`);
    return n;
  };
}

const state = (lease: Lease) => enumName(LeaseState, lease.state, "LEASE_STATE_");
const target = (lease: Lease) =>
  lease.target ? `${lease.target.provider}/${lease.target.app}/${lease.target.account}` : "";

function printLease(lease: Lease | undefined, json: boolean | undefined): void {
  printResource(LeaseSchema, lease, json, (value) => {
    printFields([
      ["id", value.id],
      ["credential", value.credentialId],
      ["target", target(value)],
      ["holder", value.holderId],
      ["holder key", value.holderJkt],
      ["created by", value.createdBy],
      ["state", state(value)],
      ["uses left", `${value.remainingUses} of ${value.maxUses}`],
      ["expires", formatTime(value.expireTime)],
      ["ended", formatTime(value.endTime)],
    ]);
  });
}

export function addLeaseCommands(program: Command): void {
  const leases = program
    .command("leases")
    .summary("lease credentials for a few uses, redeem and revoke leases")
    .description(
      "Lease a credential (by provider, app and account) for a short time and a few uses, for yourself or for an agent; redeem a lease for the sealed credential; revoke one; list and show leases.",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ aegis leases create --provider gcp --app billing --account deploy-bot --uses 1 --lifetime 300
  $ aegis leases redeem lse_… | aegis credential open --key me.jwk
  $ aegis leases list --state active`,
    );

  withBrokerAccess(
    leases
      .command("create")
      .summary("lease a credential")
      .description(
        "Lease the credential registered for --provider/--app/--account: for you, or for --holder (an agent, optionally bound to its DPoP key thumbprint with --holder-jkt). Needs credential.lease.create for that target (and credential.lease.delegate to lease for another).",
      )
      .requiredOption("--provider <provider>", "the credential's provider, e.g. gcp")
      .requiredOption("--app <app>", "the credential's app")
      .requiredOption("--account <account>", "the credential's account")
      .option("--uses <n>", "how many redemptions (default: 1)", count(10_000, "uses"))
      .option("--lifetime <seconds>", "how long the lease lasts (default: the broker's)", count(86_400, "seconds"))
      .option("--holder <principal-id>", "lease for this principal instead of yourself (prn_…)")
      .option("--holder-jkt <thumbprint>", "bind the lease to the holder's DPoP key (RFC 7638 thumbprint)")
      .option("--idempotency-key <key>", "repeat the call safely: the same key returns the same lease"),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n${dpopHelp}\n\nExample:\n  $ aegis leases create --provider gcp --app billing --account deploy-bot --uses 1 --lifetime 300`,
    )
    .action(
      async (
        options: AccessOptions & {
          provider: string;
          app: string;
          account: string;
          uses?: number;
          lifetime?: number;
          holder?: string;
          holderJkt?: string;
          idempotencyKey?: string;
        },
      ) => {
        const client = await brokerClient(LeaseService, options);
        const { lease } = await client.createLease({
          target: { provider: options.provider, app: options.app, account: options.account },
          maxUses: options.uses ?? 0,
          ...(options.lifetime ? { lifetime: durationFromMs(options.lifetime * 1000) } : {}),
          holderId: options.holder ?? "",
          holderJkt: options.holderJkt ?? "",
          idempotencyKey: options.idempotencyKey ?? "",
        });
        printLease(lease, options.json);
      },
    );

  withBrokerAccess(
    leases
      .command("redeem")
      .summary("redeem a lease; prints the sealed credential alone")
      .description(
        "Redeem one use of a lease you hold. Prints the sealed credential (a JWE, JSON) alone, for `aegis credential open --key <your private JWK>`; with --json the whole answer (uses left, credential version).",
      )
      .argument("<lease-id>", "the lease (lse_…)"),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n${dpopHelp}\n\nExample:\n  $ aegis leases redeem lse_… | aegis credential open --key me.jwk`,
    )
    .action(async (leaseId: string, options: AccessOptions) => {
      const answer = await (await brokerClient(LeaseService, options)).redeemLease({ leaseId });
      if (options.json) printJson(RedeemLeaseResponseSchema, answer);
      else process.stdout.write(`${answer.sealedJwe}\n`);
    });

  withBrokerAccess(
    leases
      .command("revoke")
      .summary("revoke a lease")
      .description("Revoke a lease: no use of it is redeemed any more, on any instance.")
      .argument("<lease-id>", "the lease (lse_…)"),
  )
    .addHelpText("after", `${accessHelp}\n${dpopHelp}\n\nExample:\n  $ aegis leases revoke lse_…`)
    .action(async (leaseId: string, options: AccessOptions) => {
      const { lease } = await (await brokerClient(LeaseService, options)).revokeLease({ leaseId });
      printLease(lease, options.json);
    });

  withBrokerAccess(
    leases
      .command("get")
      .summary("show a lease")
      .description("Show one lease: its target, holder, uses left and state.")
      .argument("<lease-id>", "the lease (lse_…)"),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis leases get lse_…`)
    .action(async (leaseId: string, options: AccessOptions) => {
      const { lease } = await (await brokerClient(LeaseService, options)).getLease({ leaseId });
      printLease(lease, options.json);
    });

  withPaging(
    withBrokerAccess(
      leases
        .command("list")
        .summary("list leases")
        .description("List the leases you may read, newest first, one page at a time (--all for every page).")
        .addOption(
          new Option("--state <state>", "only leases in this state").choices([
            "active",
            "exhausted",
            "revoked",
            "expired",
          ]),
        )
        .option("--holder <principal-id>", "only leases held by this principal")
        .option("--credential <credential-id>", "only leases of this credential"),
    ),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExamples:\n  $ aegis leases list --state active\n  $ aegis leases list --all --json`,
    )
    .action(async (options: AccessOptions & PageOptions & { state?: string; holder?: string; credential?: string }) => {
      const client = await brokerClient(LeaseService, options);
      const filter = {
        state: options.state
          ? LeaseState[options.state.toUpperCase() as keyof typeof LeaseState]
          : LeaseState.UNSPECIFIED,
        holderId: options.holder ?? "",
        credentialId: options.credential ?? "",
      };
      await printPages(
        options,
        ListLeasesResponseSchema,
        "leases",
        (pageToken, pageSize) => client.listLeases({ ...filter, pageToken, pageSize }),
        {
          header: ["id", "target", "holder", "state", "uses left", "expires"],
          row: (l) => [l.id, target(l), l.holderId, state(l), String(l.remainingUses), formatTime(l.expireTime)],
        },
      );
    });
}
