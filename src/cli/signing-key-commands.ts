// `aegis signing-keys list|rotate|retire` (TokenService): the keys the
// broker signs its tokens with, for operators. Rotating makes the published
// next key sign, keeps the old one verifying until its tokens expire and
// publishes a new next key; retiring takes a key out of the JWKS at once
// (after a leak), so every token it signed stops verifying.
import { create } from "@bufbuild/protobuf";
import type { Command } from "commander";
import {
  ListSigningKeysResponseSchema,
  type SigningKey,
  SigningKeyState,
  TokenService,
} from "../../gen/proto/aegis/token/v1/token_pb.js";
import { type AccessOptions, accessHelp, brokerClient, withBrokerAccess } from "./broker-access.js";
import { enumName, formatTime, printJson, printTable } from "./output.js";

function printKeys(keys: SigningKey[], json: boolean | undefined): void {
  if (json) {
    printJson(ListSigningKeysResponseSchema, create(ListSigningKeysResponseSchema, { keys }));
    return;
  }
  printTable(
    ["kid", "state", "created", "retired"],
    keys.map((k) => [
      k.kid,
      enumName(SigningKeyState, k.state, "SIGNING_KEY_STATE_"),
      formatTime(k.createTime),
      formatTime(k.retireTime),
    ]),
  );
}

export function addSigningKeyCommands(program: Command): void {
  const keys = program
    .command("signing-keys")
    .summary("list, rotate and retire the broker's token signing keys (operators)")
    .description(
      "The keys the broker signs tokens with: next (published, not yet signing), active, retiring (verifying until its tokens expire), retired. Rotate to start signing with the next key; retire a key to stop every token it signed at once.",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ aegis signing-keys list
  $ aegis signing-keys rotate
  $ aegis signing-keys retire 5f1c…`,
    );

  withBrokerAccess(
    keys.command("list").summary("list the signing keys").description("List the signing keys and their states."),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis signing-keys list`)
    .action(async (options: AccessOptions) => {
      const { keys: listed } = await (await brokerClient(TokenService, options)).listSigningKeys({});
      printKeys(listed, options.json);
    });

  withBrokerAccess(
    keys
      .command("rotate")
      .summary("start signing with a new key")
      .description(
        "Rotate now: the next key starts signing, the active one keeps verifying until every token it signed has expired, and a new next key is published.",
      ),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis signing-keys rotate`)
    .action(async (options: AccessOptions) => {
      const { keys: listed } = await (await brokerClient(TokenService, options)).rotateSigningKeys({});
      printKeys(listed, options.json);
    });

  withBrokerAccess(
    keys
      .command("retire")
      .summary("retire a signing key now")
      .description(
        "Retire a (compromised) signing key now: it leaves the JWKS and every token it signed stops verifying at the broker; resource servers verifying offline stop accepting it within the JWKS max-age (60 s). If it was signing, the next key takes over.",
      )
      .argument("<kid>", "the key's id, as `list` shows it"),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis signing-keys retire 5f1c…`)
    .action(async (kid: string, options: AccessOptions) => {
      const { keys: listed } = await (await brokerClient(TokenService, options)).retireSigningKey({ kid });
      printKeys(listed, options.json);
    });
}
