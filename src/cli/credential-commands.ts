// `aegis key generate` and `aegis credential put|open|list|get|delete`, the
// client side of sealed credentials: the secret is read from stdin and
// sealed on this machine, so it never appears in a shell history, a process
// list or the broker. The broker only ever receives the sealed JWE; list,
// get and delete manage what it holds (metadata, never the secret).
import { readFileSync, writeFileSync } from "node:fs";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { type Command, Option } from "commander";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import { AgentService, KeyStatus, KeyUse } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import {
  type Credential,
  CredentialSchema,
  CredentialService,
  ListCredentialsResponseSchema,
} from "../../gen/proto/aegis/credential/v1/credential_pb.js";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { openSealedCredential, type SealingRecipient, sealCredential } from "../sdk/sealed-credential.js";
import { type AccessOptions, accessHelp, brokerClient, withBrokerAccess } from "./broker-access.js";
import { brokerTransport, parseServerUrl } from "./broker-connection.js";
import { UsageError } from "./failures.js";
import { formatTime, type PageOptions, printFields, printPages, printResource, withPaging } from "./output.js";

export function addKeyCommands(program: Command): void {
  const key = program
    .command("key")
    .summary("make encryption key pairs for sealed credentials")
    .description("Make encryption key pairs for sealed credentials.")
    .addHelpText("after", "\nExample:\n  $ aegis key generate --out agent.jwk > agent.public.jwk");
  key
    .command("generate")
    .summary("make an encryption key pair")
    .description(
      "Make an encryption key pair: the private JWK goes to the --out file (0600, never overwritten), the public JWK to stdout, to register with AddAgentKey (use ENCRYPTION).",
    )
    .requiredOption("--out <file>", "where to write the private JWK")
    .addOption(new Option("--curve <curve>", "key curve").choices(["X25519", "P-256"]).default("X25519"))
    .addHelpText(
      "after",
      `
Examples:
  $ aegis key generate --out agent.jwk > agent.public.jwk
  $ aegis key generate --out agent.jwk --curve P-256`,
    )
    .action(generateKey);
}

export function addCredentialCommands(program: Command): void {
  const credential = program
    .command("credential")
    .summary("seal, register, list and delete credentials; open a sealed one")
    .description(
      "Seal credentials on this machine and open them: the secret is read from stdin, so it never appears in a shell history, a process list or the broker. List, show and delete what the broker holds (never the secret).",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ AEGIS_API_KEY=$KEY aegis credential put --server http://127.0.0.1:8080 \\
      --provider gcp --app billing-prod --account deploy-bot --to-agent prn_… < secret.txt
  $ aegis credential open --key agent.jwk < redeemed.json`,
    );
  credential
    .command("put")
    .summary("seal a secret from stdin and register it")
    .description(
      "Read a secret from stdin, seal it here for the registered encryption keys of the agents (--to-agent) and your own (--to-self), and register it at the broker, or re-seal an existing credential (--update). Authenticates with the API key in AEGIS_API_KEY.",
    )
    .requiredOption("--server <url>", "the broker, e.g. http://127.0.0.1:8080", parseServerUrl)
    .option("--provider <provider>", "target provider, e.g. gcp (required unless --update)")
    .option("--app <app>", "target app (required unless --update)")
    .option("--account <account>", "target account (required unless --update)")
    .option("--name <name>", "display name")
    .option("--to-agent <agent-id>", "seal for this agent's encryption keys (repeatable)", collect)
    .option("--to-self", "seal for your own encryption keys too")
    .option("--update <credential-id>", "re-seal this credential instead of registering a new one")
    .addHelpText(
      "after",
      `
Environment:
  AEGIS_API_KEY   API key of the person registering the credential (required)

Examples:
  $ AEGIS_API_KEY=$KEY aegis credential put --server http://127.0.0.1:8080 \\
      --provider gcp --app billing-prod --account deploy-bot --to-agent prn_… --to-self < secret.txt
  $ AEGIS_API_KEY=$KEY aegis credential put --server http://127.0.0.1:8080 \\
      --update crd_… --to-agent prn_… < new-secret.txt`,
    )
    .action(putCredential);
  credential
    .command("open")
    .summary("open a sealed credential from stdin")
    .description(
      "Read a sealed JWE (e.g. the sealed material RedeemLease returned) from stdin, open it with the private JWK in the --key file and print the secret.",
    )
    .requiredOption("--key <file>", "the private JWK (from aegis key generate)")
    .addHelpText("after", "\nExample:\n  $ aegis credential open --key agent.jwk < redeemed.json")
    .action(openCredential);
  addCredentialReadCommands(credential);
}

const targetOf = (c: Credential) => (c.target ? `${c.target.provider}/${c.target.app}/${c.target.account}` : "");

function printCredential(credential: Credential | undefined, json: boolean | undefined): void {
  printResource(CredentialSchema, credential, json, (value) => {
    printFields([
      ["id", value.id],
      ["target", targetOf(value)],
      ["name", value.displayName],
      ["owner", value.ownerId],
      ["version", String(value.version)],
      ["sealed for", value.recipientKeyIds.join(" ")],
      ["created", formatTime(value.createTime)],
      ["updated", formatTime(value.updateTime)],
    ]);
  });
}

/** list, get and delete: what the broker holds of a credential (never the secret). */
function addCredentialReadCommands(credential: Command): void {
  withPaging(
    withBrokerAccess(
      credential
        .command("list")
        .summary("list the credentials you may read")
        .description("List registered credentials (targets, versions, recipients; never secrets), one page at a time.")
        .option("--provider <provider>", "only this provider's"),
    ),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis credential list --provider gcp`)
    .action(async (options: AccessOptions & PageOptions & { provider?: string }) => {
      const client = await brokerClient(CredentialService, options);
      await printPages(
        options,
        ListCredentialsResponseSchema,
        "credentials",
        (pageToken, pageSize) => client.listCredentials({ provider: options.provider ?? "", pageToken, pageSize }),
        {
          header: ["id", "target", "name", "version", "updated"],
          row: (c) => [c.id, targetOf(c), c.displayName, String(c.version), formatTime(c.updateTime)],
        },
      );
    });

  withBrokerAccess(
    credential
      .command("get")
      .summary("show a credential")
      .description("Show one credential: target, owner, version and the keys it is sealed for (never the secret).")
      .argument("<credential-id>", "the credential (crd_…)"),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis credential get crd_…`)
    .action(async (credentialId: string, options: AccessOptions) => {
      const { credential: found } = await (await brokerClient(CredentialService, options)).getCredential({
        credentialId,
      });
      printCredential(found, options.json);
    });

  withBrokerAccess(
    credential
      .command("delete")
      .summary("delete a credential")
      .description("Delete a credential and its sealed material; every active lease on it ends (revoked).")
      .argument("<credential-id>", "the credential (crd_…)"),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis credential delete crd_…`)
    .action(async (credentialId: string, options: AccessOptions) => {
      await (await brokerClient(CredentialService, options)).deleteCredential({ credentialId });
      process.stdout.write(options.json ? "{}\n" : "deleted\n");
    });
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function readJwk(file: string): JWK {
  const text = readFileSync(file, "utf8");
  try {
    return JSON.parse(text) as JWK;
  } catch {
    throw new UsageError(`${file} is not a JWK (not JSON)`);
  }
}

async function generateKey(options: { out: string; curve: "X25519" | "P-256" }): Promise<void> {
  const pair = await generateKeyPair("ECDH-ES+A256KW", { crv: options.curve, extractable: true });
  writeFileSync(options.out, `${JSON.stringify(await exportJWK(pair.privateKey))}\n`, { mode: 0o600, flag: "wx" });
  process.stdout.write(`${JSON.stringify(await exportJWK(pair.publicKey))}\n`);
}

async function openCredential(options: { key: string }): Promise<void> {
  const key = readJwk(options.key);
  const sealed = (await readStdin()).trim();
  if (!sealed) throw new UsageError("no sealed credential on stdin");
  try {
    JSON.parse(sealed);
  } catch {
    throw new UsageError("stdin is not a sealed credential (a JWE in JSON)");
  }
  process.stdout.write(await openSealedCredential(sealed, key));
}

interface PutOptions {
  server: string;
  provider?: string;
  app?: string;
  account?: string;
  name?: string;
  toAgent?: string[];
  toSelf?: boolean;
  update?: string;
}

async function putCredential(options: PutOptions, command: Command): Promise<void> {
  const apiKey = process.env.AEGIS_API_KEY;
  if (!apiKey) command.error("credential put needs AEGIS_API_KEY (your API key) in the environment");
  if (!options.update && !(options.provider && options.app && options.account)) {
    command.error("credential put needs --provider, --app and --account (or --update CREDENTIAL_ID)");
  }
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${apiKey}`);
    return next(req);
  };
  const transport = brokerTransport(options.server, bearer);
  const agents = createClient(AgentService, transport);
  const holders = [...(options.toAgent ?? [])];
  if (options.toSelf) {
    holders.push((await createClient(PrincipalService, transport).whoAmI({})).principal?.id ?? "");
  }
  const recipients: SealingRecipient[] = [];
  for (const agentId of holders) {
    const { keys } = await agents.listAgentKeys({ agentId });
    for (const key of keys) {
      if (key.use === KeyUse.ENCRYPTION && key.status === KeyStatus.ACTIVE) {
        recipients.push({ kid: key.id, jwk: JSON.parse(key.jwkJson) as JWK });
      }
    }
  }
  if (recipients.length === 0) throw new UsageError("no active encryption keys among --to-agent / --to-self");
  const secret = (await readStdin()).replace(/\r?\n$/, "");
  if (!secret) throw new UsageError("no secret on stdin");
  const sealedJwe = await sealCredential(secret, recipients);
  const credentials = createClient(CredentialService, transport);
  const { credential } = options.update
    ? await credentials.updateCredential({ credentialId: options.update, sealedJwe })
    : await credentials.registerCredential({
        target: { provider: options.provider ?? "", app: options.app ?? "", account: options.account ?? "" },
        displayName: options.name ?? "",
        sealedJwe,
      });
  process.stdout.write(
    `${credential?.id} version ${credential?.version} sealed for ${recipients.map((r) => r.kid).join(", ")}\n`,
  );
}
