// Client-side credential commands: the secret is read from stdin and sealed
// on this machine, so it never appears in a shell history, a process list or
// the broker. The broker only ever receives the sealed JWE.
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import { AgentService, KeyStatus, KeyUse } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { CredentialService } from "../../gen/proto/aegis/credential/v1/credential_pb.js";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { openSealedCredential, type SealingRecipient, sealCredential } from "../sdk/sealed-credential.js";

export const credentialUsage = `
  aegis key generate --out FILE [--curve X25519|P-256]
                            make an encryption key pair: the private JWK goes to FILE (0600),
                            the public JWK to stdout (register it with AddAgentKey)
  aegis credential put --server URL --provider P --app A --account C
                       [--name NAME] [--to-agent AGENT_ID]... [--to-self] [--update CREDENTIAL_ID]
                            read a secret from stdin, seal it here for the agents' and your own
                            registered encryption keys, and register (or re-seal) it;
                            authenticates with AEGIS_API_KEY
  aegis credential open --key FILE
                            read a sealed JWE (e.g. from RedeemLease) from stdin, open it with
                            the private JWK in FILE, print the secret
`;

/** Wrong arguments: the CLI prints the message and the usage, and exits 2. */
export class UsageError extends Error {}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export async function keyCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { out: { type: "string" }, curve: { type: "string", default: "X25519" } },
    allowPositionals: true,
  });
  if (positionals[0] !== "generate" || !values.out) throw new UsageError("usage: aegis key generate --out FILE");
  if (values.curve !== "X25519" && values.curve !== "P-256") throw new UsageError("--curve must be X25519 or P-256");
  const pair = await generateKeyPair("ECDH-ES+A256KW", { crv: values.curve, extractable: true });
  writeFileSync(values.out, `${JSON.stringify(await exportJWK(pair.privateKey))}\n`, { mode: 0o600, flag: "wx" });
  process.stdout.write(`${JSON.stringify(await exportJWK(pair.publicKey))}\n`);
  return 0;
}

export async function credentialCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      server: { type: "string" },
      provider: { type: "string" },
      app: { type: "string" },
      account: { type: "string" },
      name: { type: "string", default: "" },
      "to-agent": { type: "string", multiple: true, default: [] },
      "to-self": { type: "boolean", default: false },
      update: { type: "string" },
      key: { type: "string" },
    },
    allowPositionals: true,
  });
  if (positionals[0] === "open") {
    if (!values.key) throw new UsageError("usage: aegis credential open --key FILE < sealed.json");
    const key = JSON.parse(readFileSync(values.key, "utf8")) as JWK;
    process.stdout.write(await openSealedCredential((await readStdin()).trim(), key));
    return 0;
  }
  if (positionals[0] !== "put") throw new UsageError(`unknown credential command "${positionals[0] ?? ""}"`);
  const apiKey = process.env.AEGIS_API_KEY;
  if (!values.server || !apiKey) throw new UsageError("credential put needs --server and AEGIS_API_KEY");
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${apiKey}`);
    return next(req);
  };
  const transport = createConnectTransport({ baseUrl: values.server, httpVersion: "1.1", interceptors: [bearer] });
  const agents = createClient(AgentService, transport);
  const holders = [...values["to-agent"]];
  if (values["to-self"]) {
    holders.push((await createClient(PrincipalService, transport).whoAmI({})).principal?.id ?? "");
  }
  const recipients: SealingRecipient[] = [];
  for (const agentId of holders) {
    const { keys } = await agents.listAgentKeys({ agentId });
    for (const key of keys) {
      if (key.use === KeyUse.ENCRYPTION && key.status === KeyStatus.ACTIVE) {
        recipients.push({ kid: key.keyId, jwk: JSON.parse(key.jwkJson) as JWK });
      }
    }
  }
  if (recipients.length === 0) throw new UsageError("no active encryption keys among --to-agent / --to-self");
  const secret = (await readStdin()).replace(/\r?\n$/, "");
  if (!secret) throw new UsageError("no secret on stdin");
  const sealedJwe = await sealCredential(secret, recipients);
  const credentials = createClient(CredentialService, transport);
  const { credential } = values.update
    ? await credentials.updateCredential({ credentialId: values.update, sealedJwe })
    : await credentials.registerCredential({
        target: { provider: values.provider ?? "", app: values.app ?? "", account: values.account ?? "" },
        displayName: values.name,
        sealedJwe,
      });
  process.stdout.write(
    `${credential?.credentialId} version ${credential?.version} sealed for ${recipients.map((r) => r.kid).join(", ")}\n`,
  );
  return 0;
}
