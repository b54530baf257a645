// `aegis keys …` (KeyService, the KMS): create keys and walk them through
// their life (activate, deactivate, rotate, compromise, destroy), and use
// them (sign, verify, encrypt, decrypt, wrap, unwrap, data keys, public
// keys) without their material ever leaving the broker. Data comes from
// --in FILE or stdin and results go to stdout as raw bytes (or base64 text
// with --base64, or the whole answer with --json), so the commands pipe into
// each other and into files. Algorithms are always named (--algorithm
// ES256); an encryption context is given as repeatable --context k=v.
import { readFileSync, writeFileSync } from "node:fs";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { type Command, InvalidArgumentError, Option } from "commander";
import {
  DataKeySpec,
  DecryptResponseSchema,
  EncryptionAlgorithm,
  EncryptResponseSchema,
  GenerateDataKeyResponseSchema,
  GenerateDataKeyWithoutPlaintextResponseSchema,
  GetPublicKeyResponseSchema,
  type Key,
  KeySchema,
  KeyService,
  KeySpec,
  KeyState,
  KeyUsage,
  ListKeysResponseSchema,
  ListKeyVersionsResponseSchema,
  SigningAlgorithm,
  SignResponseSchema,
  UnwrapKeyResponseSchema,
  VerifyResponseSchema,
  WrapKeyResponseSchema,
} from "../../gen/proto/aegis/kms/v1/kms_pb.js";
import { type AccessOptions, accessHelp, brokerClient, withBrokerAccess } from "./broker-access.js";
import { ReportedFailure, UsageError } from "./failures.js";
import {
  enumName,
  formatDuration,
  formatTime,
  type PageOptions,
  printFields,
  printJson,
  printPages,
  printResource,
  printTable,
  withPaging,
} from "./output.js";

// The names an operator types, JOSE-style where JOSE has one.
const signingAlgorithms: Record<string, SigningAlgorithm> = {
  ES256: SigningAlgorithm.ECDSA_SHA_256,
  ES384: SigningAlgorithm.ECDSA_SHA_384,
  ES512: SigningAlgorithm.ECDSA_SHA_512,
  PS256: SigningAlgorithm.RSASSA_PSS_SHA_256,
  PS384: SigningAlgorithm.RSASSA_PSS_SHA_384,
  PS512: SigningAlgorithm.RSASSA_PSS_SHA_512,
  RS256: SigningAlgorithm.RSASSA_PKCS1_V1_5_SHA_256,
  RS384: SigningAlgorithm.RSASSA_PKCS1_V1_5_SHA_384,
  RS512: SigningAlgorithm.RSASSA_PKCS1_V1_5_SHA_512,
  Ed25519: SigningAlgorithm.ED25519,
  Ed448: SigningAlgorithm.ED448,
};
const encryptionAlgorithms: Record<string, EncryptionAlgorithm> = {
  "AES-GCM": EncryptionAlgorithm.AES_GCM,
  "RSA-OAEP-256": EncryptionAlgorithm.RSAES_OAEP_SHA_256,
};
const keySpecs: Record<string, KeySpec> = Object.fromEntries(
  Object.entries(KeySpec)
    .filter((entry): entry is [string, KeySpec] => typeof entry[1] === "number" && entry[1] !== KeySpec.UNSPECIFIED)
    .map(([name, value]) => [name.toLowerCase().replaceAll("_", "-"), value]),
);
const usages: Record<string, KeyUsage> = {
  sign: KeyUsage.SIGN_VERIFY,
  encrypt: KeyUsage.ENCRYPT_DECRYPT,
  mac: KeyUsage.GENERATE_VERIFY_MAC,
};
const dataKeySpecs: Record<string, DataKeySpec> = { "aes-128": DataKeySpec.AES_128, "aes-256": DataKeySpec.AES_256 };
const states = ["pre-active", "active", "deactivated", "compromised", "destruction-pending", "destroyed"];

function choice<T>(table: Record<string, T>, what: string) {
  return (value: string): T => {
    const found = table[value];
    if (found === undefined) throw new InvalidArgumentError(`unknown ${what}; one of ${Object.keys(table).join(", ")}`);
    return found;
  };
}

function pairs(what: string) {
  return (value: string, previous: Record<string, string> = {}): Record<string, string> => {
    const at = value.indexOf("=");
    if (at < 1) throw new InvalidArgumentError(`expected ${what} as key=value`);
    const name = value.slice(0, at);
    if (Object.hasOwn(previous, name)) throw new InvalidArgumentError(`${what} ${name} given twice`);
    return { ...previous, [name]: value.slice(at + 1) };
  };
}

function integer(min: number, max: number, unit: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected ${min} to ${max} ${unit}`);
    return n;
  };
}

interface DataOptions {
  in?: string;
  base64?: boolean;
}

/** The bytes of --in FILE, else of stdin ("-" is stdin too). */
function readInput(options: DataOptions): Uint8Array {
  const file = options.in && options.in !== "-" ? options.in : 0;
  return new Uint8Array(readFileSync(file));
}

/** Base64 text (whitespace ignored) as bytes; a clear usage error when it is not base64. */
function fromBase64(text: string, what: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean)) throw new UsageError(`${what} is not base64 text`);
  return new Uint8Array(Buffer.from(clean, clean.includes("-") || clean.includes("_") ? "base64url" : "base64"));
}

/** The input bytes, decoded from base64 when --base64 says the input is base64 text. */
function readEncoded(options: DataOptions, what: string): Uint8Array {
  const bytes = readInput(options);
  return options.base64 ? fromBase64(Buffer.from(bytes).toString("utf8"), what) : bytes;
}

/** Writes bytes to stdout: raw, or one line of base64 with --base64. */
function writeBytes(bytes: Uint8Array, base64: boolean | undefined): void {
  process.stdout.write(base64 ? `${Buffer.from(bytes).toString("base64")}\n` : bytes);
}

const state = (key: Key) => enumName(KeyState, key.state, "KEY_STATE_").replaceAll("_", "-");
const spec = (value: KeySpec) => enumName(KeySpec, value, "KEY_SPEC_").replaceAll("_", "-");
const usage = (key: Key) => enumName(KeyUsage, key.usage, "KEY_USAGE_").replaceAll("_", "-");

function printKey(key: Key | undefined, json: boolean | undefined): void {
  printResource(KeySchema, key, json, (value) => {
    printFields([
      ["id", value.id],
      ["spec", spec(value.spec)],
      ["usage", usage(value)],
      ["state", state(value)],
      ["version", String(value.currentVersion)],
      ["min decryption version", value.minDecryptionVersion ? String(value.minDecryptionVersion) : ""],
      ["description", value.description],
      [
        "labels",
        Object.entries(value.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(", "),
      ],
      ["require dpop", value.requireDpop ? "yes" : ""],
      ["rotation period", formatDuration(value.rotationPeriod)],
      ["next rotation", formatTime(value.nextRotationTime)],
      ["compromised", formatTime(value.compromiseTime)],
      ["destroyed at", formatTime(value.destroyTime)],
      ["created by", value.createdBy],
      ["created", formatTime(value.createTime)],
    ]);
  });
}

const signingNames = Object.keys(signingAlgorithms).join(", ");
const encryptionNames = Object.keys(encryptionAlgorithms).join(", ");

function withData(command: Command, what: string): Command {
  return command.option("--in <file>", `read ${what} from this file (default: stdin)`);
}

function withContext(command: Command): Command {
  return command.option(
    "--context <key=value>",
    "encryption context, bound to the result (repeatable; decrypting needs the same)",
    pairs("context"),
  );
}

function signingOption(): Option {
  return new Option("--algorithm <name>", `the signature algorithm: ${signingNames}`)
    .argParser(choice(signingAlgorithms, "signature algorithm"))
    .makeOptionMandatory();
}

function encryptionOption(): Option {
  return new Option("--algorithm <name>", `the encryption algorithm: ${encryptionNames}`)
    .argParser(choice(encryptionAlgorithms, "encryption algorithm"))
    .makeOptionMandatory();
}

type KeyAction = "activate" | "deactivate" | "rotate" | "cancel-destroy";

export function addKmsKeyCommands(program: Command): void {
  const keys = program
    .command("keys")
    .summary("KMS keys: create, rotate, sign, verify, encrypt, decrypt, wrap")
    .description(
      "Keys of the key management service: create them and walk them through their life (activate, deactivate, rotate, compromise, destroy); sign and verify, encrypt and decrypt, wrap and unwrap, make data keys, read public keys. The key material never leaves the broker.",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ aegis keys create --spec ec-p256 --activate
  $ printf hello | aegis keys sign key_… --algorithm ES256 > hello.sig
  $ printf secret | aegis keys encrypt key_… --algorithm AES-GCM --context app=billing --base64`,
    );

  withBrokerAccess(
    keys
      .command("create")
      .summary("create a key")
      .description(
        "Create a key of --spec, PRE_ACTIVE (or ACTIVE with --activate). RSA keys need --usage. Needs kms.key.create; the creator gets the administration rights over the new key (not its use rights).",
      )
      .addOption(
        new Option("--spec <spec>", `what the key is made of: ${Object.keys(keySpecs).join(", ")}`)
          .argParser(choice(keySpecs, "key spec"))
          .makeOptionMandatory(),
      )
      .addOption(
        new Option("--usage <usage>", "what it is for (required for RSA): sign, encrypt, mac").argParser(
          choice(usages, "usage"),
        ),
      )
      .option("--description <text>", "free text")
      .option("--label <name=value>", "a label (repeatable)", pairs("label"))
      .option("--activate", "make it ACTIVE at once")
      .option("--require-dpop", "require a DPoP-bound credential for every use")
      .option(
        "--rotation-period <seconds>",
        "rotate automatically (1 day to 10 years)",
        integer(86_400, 315_360_000, "seconds"),
      ),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExamples:\n  $ aegis keys create --spec ec-p256 --activate\n  $ aegis keys create --spec rsa-3072 --usage encrypt --label team=billing`,
    )
    .action(
      async (
        options: AccessOptions & {
          spec: KeySpec;
          usage?: KeyUsage;
          description?: string;
          label?: Record<string, string>;
          activate?: boolean;
          requireDpop?: boolean;
          rotationPeriod?: number;
        },
      ) => {
        const client = await brokerClient(KeyService, options);
        const { key } = await client.createKey({
          spec: options.spec,
          usage: options.usage ?? KeyUsage.UNSPECIFIED,
          description: options.description ?? "",
          labels: options.label ?? {},
          activate: options.activate ?? false,
          requireDpop: options.requireDpop ?? false,
          ...(options.rotationPeriod ? { rotationPeriod: durationFromMs(options.rotationPeriod * 1000) } : {}),
        });
        printKey(key, options.json);
      },
    );

  withPaging(
    withBrokerAccess(
      keys
        .command("list")
        .summary("list keys")
        .description("List the keys you may read, by id, one page at a time (--all for every page).")
        .addOption(new Option("--state <state>", "only keys in this state").choices(states))
        .addOption(new Option("--spec <spec>", "only keys of this spec").argParser(choice(keySpecs, "key spec")))
        .option("--label <name=value>", "only keys carrying this label"),
    ),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExamples:\n  $ aegis keys list --state active\n  $ aegis keys list --all --json`,
    )
    .action(async (options: AccessOptions & PageOptions & { state?: string; spec?: KeySpec; label?: string }) => {
      const client = await brokerClient(KeyService, options);
      const filter = {
        state: options.state
          ? KeyState[options.state.toUpperCase().replaceAll("-", "_") as keyof typeof KeyState]
          : KeyState.UNSPECIFIED,
        spec: options.spec ?? KeySpec.UNSPECIFIED,
        label: options.label ?? "",
      };
      await printPages(
        options,
        ListKeysResponseSchema,
        "keys",
        (pageToken, pageSize) => client.listKeys({ ...filter, pageToken, pageSize }),
        {
          header: ["id", "spec", "usage", "state", "version", "description"],
          row: (k) => [k.id, spec(k.spec), usage(k), state(k), String(k.currentVersion), k.description],
        },
      );
    });

  withBrokerAccess(
    keys
      .command("get")
      .summary("show a key")
      .description("Show one key's metadata: spec, usage, state, current version, labels (never its material).")
      .argument("<key-id>", "the key (key_…)"),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis keys get key_…`)
    .action(async (keyId: string, options: AccessOptions) => {
      const { key } = await (await brokerClient(KeyService, options)).getKey({ keyId });
      printKey(key, options.json);
    });

  const lifecycle: { name: KeyAction; summary: string; description: string }[] = [
    {
      name: "activate",
      summary: "make a key ACTIVE",
      description: "Make a PRE_ACTIVE or DEACTIVATED key ACTIVE: usable for every operation of its usage.",
    },
    {
      name: "deactivate",
      summary: "make a key DEACTIVATED",
      description: "Make a key DEACTIVATED: it only verifies, decrypts and unwraps any more, until activated again.",
    },
    {
      name: "rotate",
      summary: "give a key a new version",
      description:
        "Make a new version of the key current: new signatures and ciphertexts use it, older versions still verify and decrypt.",
    },
    {
      name: "cancel-destroy",
      summary: "cancel a scheduled destruction",
      description: "Cancel the scheduled destruction of a key: it comes back DEACTIVATED.",
    },
  ];
  for (const { name, summary, description } of lifecycle) {
    withBrokerAccess(
      keys.command(name).summary(summary).description(description).argument("<key-id>", "the key (key_…)"),
    )
      .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis keys ${name} key_…`)
      .action(async (keyId: string, options: AccessOptions) => {
        const client = await brokerClient(KeyService, options);
        const answer =
          name === "activate"
            ? await client.activateKey({ keyId })
            : name === "deactivate"
              ? await client.deactivateKey({ keyId })
              : name === "rotate"
                ? await client.rotateKey({ keyId })
                : await client.cancelKeyDestruction({ keyId });
        printKey(answer.key, options.json);
      });
  }

  withBrokerAccess(
    keys
      .command("compromise")
      .summary("mark a key compromised, for good")
      .description("Mark a key COMPROMISED: it refuses every operation from now on, for good. Say why with --reason.")
      .argument("<key-id>", "the key (key_…)")
      .option("--reason <text>", "why, for the audit trail"),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis keys compromise key_… --reason "leaked in a core dump"`)
    .action(async (keyId: string, options: AccessOptions & { reason?: string }) => {
      const { key } = await (await brokerClient(KeyService, options)).compromiseKey({
        keyId,
        reason: options.reason ?? "",
      });
      printKey(key, options.json);
    });

  withBrokerAccess(
    keys
      .command("destroy")
      .summary("schedule a key's destruction")
      .description(
        "Schedule the destruction of a key's material after a waiting period (7 to 30 days; 30 by default); until then it refuses everything and `aegis keys cancel-destroy` brings it back.",
      )
      .argument("<key-id>", "the key (key_…)")
      .option("--days <n>", "the waiting period in days (7 to 30)", integer(7, 30, "days")),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis keys destroy key_… --days 7`)
    .action(async (keyId: string, options: AccessOptions & { days?: number }) => {
      const client = await brokerClient(KeyService, options);
      const { key } = await client.scheduleKeyDestruction({
        keyId,
        ...(options.days ? { waitingPeriod: durationFromMs(options.days * 86_400_000) } : {}),
      });
      printKey(key, options.json);
    });

  withBrokerAccess(
    keys
      .command("versions")
      .summary("list a key's versions")
      .description("List the versions of a key, newest first: which one is current, which still decrypt and verify.")
      .argument("<key-id>", "the key (key_…)"),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis keys versions key_…`)
    .action(async (keyId: string, options: AccessOptions) => {
      const answer = await (await brokerClient(KeyService, options)).listKeyVersions({ keyId });
      if (options.json) printJson(ListKeyVersionsResponseSchema, answer);
      else
        printTable(
          ["version", "current", "usable", "created"],
          answer.versions.map((v) => [
            String(v.version),
            v.current ? "yes" : "",
            v.usable ? "yes" : "no",
            formatTime(v.createTime),
          ]),
        );
    });

  withBrokerAccess(
    keys
      .command("public-key")
      .summary("print a key's public key (PEM or JWK)")
      .description(
        "Print the public key of an asymmetric key's version (the current one by default) as PEM, or as a JWK with --jwk.",
      )
      .argument("<key-id>", "the key (key_…)")
      .option(
        "--key-version <n>",
        "this version of the key instead of the current one",
        integer(1, 2 ** 31 - 1, "(a version)"),
      )
      .option("--jwk", "print the JWK (RFC 7517) instead of PEM"),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExamples:\n  $ aegis keys public-key key_… > key.pem\n  $ aegis keys public-key key_… --jwk`,
    )
    .action(async (keyId: string, options: AccessOptions & { keyVersion?: number; jwk?: boolean }) => {
      const answer = await (await brokerClient(KeyService, options)).getPublicKey({
        keyId,
        version: options.keyVersion ?? 0,
      });
      if (options.json) printJson(GetPublicKeyResponseSchema, answer);
      else
        process.stdout.write(
          options.jwk ? `${answer.jwk}\n` : answer.pem.endsWith("\n") ? answer.pem : `${answer.pem}\n`,
        );
    });

  withBrokerAccess(
    withData(
      keys
        .command("sign")
        .summary("sign a message (stdin or --in)")
        .description(
          "Sign the message read from --in or stdin (at most 4096 bytes; --digest: its hash, made by you) with the key's current version. Prints the signature `aegis keys verify` takes, raw or with --base64; --raw-signature prints the bare signature (DER for ECDSA) for verifiers using the public key.",
        )
        .argument("<key-id>", "the key (key_…)")
        .addOption(signingOption())
        .option("--digest", "the input is the message's digest, not the message")
        .option("--raw-signature", "print the bare signature, for openssl and other verifiers")
        .option("--base64", "print base64 text instead of raw bytes"),
      "the message",
    ),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExample:\n  $ printf hello | aegis keys sign key_… --algorithm ES256 > hello.sig`,
    )
    .action(
      async (
        keyId: string,
        options: AccessOptions &
          DataOptions & { algorithm: SigningAlgorithm; digest?: boolean; rawSignature?: boolean },
      ) => {
        const value = readInput(options);
        const answer = await (await brokerClient(KeyService, options)).sign({
          keyId,
          algorithm: options.algorithm,
          input: { input: { case: options.digest ? "digest" : "message", value } },
        });
        if (options.json) printJson(SignResponseSchema, answer);
        else writeBytes(options.rawSignature ? answer.rawSignature : answer.signature, options.base64);
      },
    );

  withBrokerAccess(
    withData(
      keys
        .command("verify")
        .summary("verify a signature; exit 0 valid, 1 invalid")
        .description(
          "Verify that --signature FILE (as `aegis keys sign` printed it; base64 text with --base64) is the key's over the message read from --in or stdin. Prints valid (exit 0) or invalid (exit 1).",
        )
        .argument("<key-id>", "the key (key_…)")
        .addOption(signingOption())
        .requiredOption("--signature <file>", "the signature `aegis keys sign` printed")
        .option("--digest", "the input is the message's digest, not the message")
        .option("--base64", "the signature file is base64 text"),
      "the message",
    ),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExample:\n  $ printf hello | aegis keys verify key_… --algorithm ES256 --signature hello.sig`,
    )
    .action(
      async (
        keyId: string,
        options: AccessOptions & DataOptions & { algorithm: SigningAlgorithm; signature: string; digest?: boolean },
      ) => {
        const signature = readEncoded({ in: options.signature, base64: options.base64 }, options.signature);
        const value = readInput({ in: options.in });
        const answer = await (await brokerClient(KeyService, options)).verify({
          keyId,
          algorithm: options.algorithm,
          input: { input: { case: options.digest ? "digest" : "message", value } },
          signature,
        });
        if (options.json) printJson(VerifyResponseSchema, answer);
        else process.stdout.write(answer.valid ? `valid (version ${answer.keyVersion})\n` : "invalid\n");
        if (!answer.valid) throw new ReportedFailure(1);
      },
    );

  withBrokerAccess(
    withContext(
      withData(
        keys
          .command("encrypt")
          .summary("encrypt data (stdin or --in)")
          .description(
            "Encrypt the plaintext read from --in or stdin (at most 4096 bytes) with the key's current version, binding the --context pairs to it. Prints the ciphertext `aegis keys decrypt` takes, raw or with --base64.",
          )
          .argument("<key-id>", "the key (key_…)")
          .addOption(encryptionOption())
          .option("--base64", "print base64 text instead of raw bytes"),
        "the plaintext",
      ),
    ),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExample:\n  $ printf secret | aegis keys encrypt key_… --algorithm AES-GCM --context app=billing > secret.enc`,
    )
    .action(
      async (
        keyId: string,
        options: AccessOptions & DataOptions & { algorithm: EncryptionAlgorithm; context?: Record<string, string> },
      ) => {
        const plaintext = readInput(options);
        const answer = await (await brokerClient(KeyService, options)).encrypt({
          keyId,
          algorithm: options.algorithm,
          plaintext,
          encryptionContext: options.context ?? {},
        });
        if (options.json) printJson(EncryptResponseSchema, answer);
        else writeBytes(answer.ciphertext, options.base64);
      },
    );

  withBrokerAccess(
    withContext(
      withData(
        keys
          .command("decrypt")
          .summary("decrypt a ciphertext (stdin or --in)")
          .description(
            "Decrypt the ciphertext read from --in or stdin (as `aegis keys encrypt` printed it; base64 text with --base64), with the same --context pairs it was made with. Prints the plaintext raw.",
          )
          .argument("<key-id>", "the key (key_…)")
          .option("--base64", "the ciphertext is base64 text"),
        "the ciphertext",
      ),
    ),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExample:\n  $ aegis keys decrypt key_… --context app=billing --in secret.enc`,
    )
    .action(async (keyId: string, options: AccessOptions & DataOptions & { context?: Record<string, string> }) => {
      const ciphertext = readEncoded(options, "the ciphertext");
      const answer = await (await brokerClient(KeyService, options)).decrypt({
        keyId,
        ciphertext,
        encryptionContext: options.context ?? {},
      });
      if (options.json) printJson(DecryptResponseSchema, answer);
      else writeBytes(answer.plaintext, false);
    });

  withBrokerAccess(
    withContext(
      keys
        .command("data-key")
        .summary("make a data key, wrapped by the key")
        .description(
          "Make a random data key and wrap it with the key (for envelope encryption): the wrapped form goes to --wrapped-out FILE (for `aegis keys unwrap`), the data key in clear to stdout (raw, or --base64). --without-plaintext makes only the wrapped form. With --json, both are printed in base64 in one JSON answer.",
        )
        .argument("<key-id>", "the key (key_…)")
        .addOption(encryptionOption())
        .addOption(
          new Option("--size <spec>", "the data key's size: aes-128, aes-256")
            .argParser(choice(dataKeySpecs, "data key size"))
            .default(DataKeySpec.AES_256, "aes-256"),
        )
        .option("--wrapped-out <file>", "write the wrapped data key to this file (not overwritten)")
        .option("--without-plaintext", "make only the wrapped form; print nothing in clear")
        .option("--base64", "write base64 text instead of raw bytes"),
    ),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExample:\n  $ aegis keys data-key key_… --algorithm AES-GCM --context app=billing --wrapped-out dek.wrapped --base64`,
    )
    .action(
      async (
        keyId: string,
        options: AccessOptions & {
          algorithm: EncryptionAlgorithm;
          size: DataKeySpec;
          context?: Record<string, string>;
          wrappedOut?: string;
          withoutPlaintext?: boolean;
          base64?: boolean;
        },
      ) => {
        if (!options.json && !options.wrappedOut) throw new UsageError("data-key needs --wrapped-out FILE (or --json)");
        const client = await brokerClient(KeyService, options);
        const request = {
          keyId,
          algorithm: options.algorithm,
          dataKeySpec: options.size,
          encryptionContext: options.context ?? {},
        };
        const answer = options.withoutPlaintext
          ? await client.generateDataKeyWithoutPlaintext(request)
          : await client.generateDataKey(request);
        if (options.wrappedOut) {
          const wrapped = options.base64 ? `${Buffer.from(answer.wrappedKey).toString("base64")}\n` : answer.wrappedKey;
          writeFileSync(options.wrappedOut, wrapped, { flag: "wx", mode: 0o600 });
        }
        if (options.json) {
          if ("plaintext" in answer) printJson(GenerateDataKeyResponseSchema, answer);
          else printJson(GenerateDataKeyWithoutPlaintextResponseSchema, answer);
        } else if ("plaintext" in answer) writeBytes(answer.plaintext, options.base64);
      },
    );

  withBrokerAccess(
    withContext(
      withData(
        keys
          .command("wrap")
          .summary("wrap key material (stdin or --in)")
          .description(
            "Wrap the key material read from --in or stdin (1 to 1024 bytes) with the key, binding the --context pairs. Prints the wrapped form `aegis keys unwrap` takes, raw or with --base64.",
          )
          .argument("<key-id>", "the key (key_…)")
          .addOption(encryptionOption())
          .option("--base64", "print base64 text instead of raw bytes"),
        "the key material",
      ),
    ),
  )
    .addHelpText(
      "after",
      `${accessHelp}\n\nExample:\n  $ aegis keys wrap key_… --algorithm AES-GCM --in dek.bin > dek.wrapped`,
    )
    .action(
      async (
        keyId: string,
        options: AccessOptions & DataOptions & { algorithm: EncryptionAlgorithm; context?: Record<string, string> },
      ) => {
        const keyMaterial = readInput(options);
        const answer = await (await brokerClient(KeyService, options)).wrapKey({
          keyId,
          algorithm: options.algorithm,
          keyMaterial,
          encryptionContext: options.context ?? {},
        });
        if (options.json) printJson(WrapKeyResponseSchema, answer);
        else writeBytes(answer.wrappedKey, options.base64);
      },
    );

  withBrokerAccess(
    withContext(
      withData(
        keys
          .command("unwrap")
          .summary("unwrap a wrapped key (stdin or --in)")
          .description(
            "Unwrap the wrapped key read from --in or stdin (as `aegis keys wrap` or `data-key` wrote it; base64 text with --base64), with the same --context pairs. Prints the key material raw.",
          )
          .argument("<key-id>", "the key (key_…)")
          .option("--base64", "the wrapped key is base64 text"),
        "the wrapped key",
      ),
    ),
  )
    .addHelpText("after", `${accessHelp}\n\nExample:\n  $ aegis keys unwrap key_… --in dek.wrapped > dek.bin`)
    .action(async (keyId: string, options: AccessOptions & DataOptions & { context?: Record<string, string> }) => {
      const wrappedKey = readEncoded(options, "the wrapped key");
      const answer = await (await brokerClient(KeyService, options)).unwrapKey({
        keyId,
        wrappedKey,
        encryptionContext: options.context ?? {},
      });
      if (options.json) printJson(UnwrapKeyResponseSchema, answer);
      else writeBytes(answer.keyMaterial, false);
    });
}
