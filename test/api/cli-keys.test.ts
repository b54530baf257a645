// `aegis keys` (the KMS) as an operator and a key user run it: a real
// `aegis` process against a real broker. The operator holds only
// kms.key.create (and so administers the keys it makes); the user holds use
// rights on exactly those keys. Data goes in on stdin or --in, results come
// out as raw bytes or base64.
import { createPublicKey, verify as verifySignature } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { runAegis } from "../support/cli.js";
import { databaseKinds } from "../support/databases.js";
import { type Actor, createActor } from "../support/fixtures.js";

describe.each(databaseKinds)("aegis keys (%s)", (database) => {
  let t: TestBroker;
  let operator: Actor;
  let dir: string;

  async function aegis(args: string[], key: string, input: string | Buffer = "") {
    const cli = runAegis([...args, "--server", t.broker.url], { AEGIS_API_KEY: key, AEGIS_CONFIG_DIR: dir });
    const chunks: Buffer[] = [];
    cli.child.stdout?.on("data", (d: Buffer) => chunks.push(d));
    cli.child.stdin?.end(input);
    const code = await cli.closed;
    return { code, stdout: cli.stdout(), bytes: Buffer.concat(chunks), stderr: cli.stderr() };
  }

  const idOf = (stdout: string) => /^id:\s+(key_\S+)$/m.exec(stdout)?.[1] ?? "";

  beforeAll(async () => {
    t = await startTestBroker(database);
    operator = await createActor(t, { name: "KMS operator", scopes: ["kms.key.create"] });
    dir = mkdtempSync(path.join(tmpdir(), "aegis-cli-keys-"));
  });
  afterAll(() => t.stop());

  it("creates, activates, signs from stdin, verifies, encrypts with a context, makes data keys, rotates and compromises", async () => {
    const created = await aegis(
      ["keys", "create", "--spec", "ec-p256", "--description", "release signing"],
      operator.key,
    );
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^state:\s+pre-active$/m);
    const signingKey = idOf(created.stdout);
    expect(signingKey).toMatch(/^key_[a-z2-7]{20}$/);

    const activated = await aegis(["keys", "activate", signingKey], operator.key);
    expect(activated.code).toBe(0);
    expect(activated.stdout).toMatch(/^state:\s+active$/m);

    const aes = await aegis(["keys", "create", "--spec", "aes-256", "--activate", "--json"], operator.key);
    expect(aes.code).toBe(0);
    const encryptionKey = (JSON.parse(aes.stdout) as { id: string; state: string }).id;
    expect(JSON.parse(aes.stdout)).toMatchObject({ state: "KEY_STATE_ACTIVE", spec: "KEY_SPEC_AES_256" });

    const listed = await aegis(["keys", "list", "--state", "active", "--all"], operator.key);
    expect(listed.stdout).toMatch(
      new RegExp(`^${signingKey}\\s+ec-p256\\s+sign-verify\\s+active\\s+1\\s+release signing$`, "m"),
    );
    expect(listed.stdout).toContain(encryptionKey);

    const user = await createActor(t, {
      tenantId: operator.tenantId,
      name: "KMS user",
      scopes: [
        `kms.sign:key:${signingKey}`,
        `kms.verify:key:${signingKey}`,
        `kms.public_key.read:key:${signingKey}`,
        `kms.encrypt:key:${encryptionKey}`,
        `kms.decrypt:key:${encryptionKey}`,
        `kms.data_key.generate:key:${encryptionKey}`,
        `kms.wrap:key:${encryptionKey}`,
        `kms.unwrap:key:${encryptionKey}`,
      ],
    });

    // Sign: the message on stdin, the signature as raw bytes on stdout.
    const message = Buffer.from("release v1.2.3\n");
    const signed = await aegis(["keys", "sign", signingKey, "--algorithm", "ES256"], user.key, message);
    expect(signed.stderr).toBe("");
    expect(signed.code).toBe(0);
    const signatureFile = path.join(dir, "release.sig");
    writeFileSync(signatureFile, signed.bytes);

    const valid = await aegis(
      ["keys", "verify", signingKey, "--algorithm", "ES256", "--signature", signatureFile],
      user.key,
      message,
    );
    expect([valid.code, valid.stdout]).toEqual([0, "valid (version 1)\n"]);
    const tampered = await aegis(
      ["keys", "verify", signingKey, "--algorithm", "ES256", "--signature", signatureFile],
      user.key,
      Buffer.from("release v1.2.4\n"),
    );
    expect([tampered.code, tampered.stdout, tampered.stderr]).toEqual([1, "invalid\n", ""]);

    // The bare signature checks out with the public key alone, outside the broker.
    const raw = await aegis(
      ["keys", "sign", signingKey, "--algorithm", "ES256", "--raw-signature", "--base64"],
      user.key,
      message,
    );
    const pem = await aegis(["keys", "public-key", signingKey], user.key);
    expect(pem.stdout).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    const bare = Buffer.from(raw.stdout.trim(), "base64");
    expect(verifySignature("sha256", message, createPublicKey(pem.stdout), bare)).toBe(true);

    // Encrypt from --in with a context; decrypt needs the same context.
    const plainFile = path.join(dir, "plain.txt");
    writeFileSync(plainFile, "the database password\n");
    const sealed = await aegis(
      [
        "keys",
        "encrypt",
        encryptionKey,
        "--algorithm",
        "AES-GCM",
        "--context",
        "app=billing",
        "--in",
        plainFile,
        "--base64",
      ],
      user.key,
    );
    expect(sealed.code).toBe(0);
    expect(sealed.stdout).toMatch(/^[A-Za-z0-9+/]+=*\n$/);
    const opened = await aegis(
      ["keys", "decrypt", encryptionKey, "--context", "app=billing", "--base64"],
      user.key,
      sealed.stdout,
    );
    expect([opened.code, opened.stdout, opened.stderr]).toEqual([0, "the database password\n", ""]);
    const wrongContext = await aegis(
      ["keys", "decrypt", encryptionKey, "--context", "app=payroll", "--base64"],
      user.key,
      sealed.stdout,
    );
    expect(wrongContext.code).toBe(1);
    expect(wrongContext.stdout).toBe("");
    expect(wrongContext.stderr).toMatch(/^aegis: the broker answered \[[a-z_]+\] .+ \(reason: [A-Z_]+\)\n$/);
    expect(wrongContext.stderr).not.toContain("the database password");

    // A data key: the clear copy on stdout, the wrapped one in a file that unwraps to it.
    const wrappedFile = path.join(dir, "dek.wrapped");
    const dataKey = await aegis(
      [
        "keys",
        "data-key",
        encryptionKey,
        "--algorithm",
        "AES-GCM",
        "--context",
        "bucket=reports",
        "--wrapped-out",
        wrappedFile,
      ],
      user.key,
    );
    expect(dataKey.stderr).toBe("");
    expect(dataKey.code).toBe(0);
    expect(dataKey.bytes).toHaveLength(32);
    const unwrapped = await aegis(
      ["keys", "unwrap", encryptionKey, "--context", "bucket=reports", "--in", wrappedFile],
      user.key,
    );
    expect(unwrapped.code).toBe(0);
    expect(unwrapped.bytes.equals(dataKey.bytes)).toBe(true);
    const wrapped = await aegis(
      ["keys", "wrap", encryptionKey, "--algorithm", "AES-GCM", "--base64"],
      user.key,
      dataKey.bytes,
    );
    const rewrapped = await aegis(["keys", "unwrap", encryptionKey, "--base64"], user.key, wrapped.stdout);
    expect(rewrapped.bytes.equals(dataKey.bytes)).toBe(true);
    expect(readFileSync(wrappedFile).equals(Buffer.from(wrapped.stdout.trim(), "base64"))).toBe(false);

    // Rotate: version 2 signs, version 1 still verifies.
    const rotated = await aegis(["keys", "rotate", signingKey], operator.key);
    expect(rotated.stdout).toMatch(/^version:\s+2$/m);
    const versions = await aegis(["keys", "versions", signingKey], operator.key);
    expect(versions.stdout).toMatch(/^2\s+yes\s+yes\s+\S+$/m);
    expect(versions.stdout).toMatch(/^1\s+yes\s+\S+$/m);
    const stillValid = await aegis(
      ["keys", "verify", signingKey, "--algorithm", "ES256", "--signature", signatureFile],
      user.key,
      message,
    );
    expect(stillValid.stdout).toBe("valid (version 1)\n");
    const firstJwk = await aegis(["keys", "public-key", signingKey, "--key-version", "1", "--jwk"], user.key);
    expect(JSON.parse(firstJwk.stdout)).toMatchObject({ kty: "EC", crv: "P-256", kid: `${signingKey}/v1` });

    // Compromise: every sign is refused from then on.
    const compromised = await aegis(["keys", "compromise", signingKey, "--reason", "key file leaked"], operator.key);
    expect(compromised.code).toBe(0);
    expect(compromised.stdout).toMatch(/^state:\s+compromised$/m);
    const refused = await aegis(["keys", "sign", signingKey, "--algorithm", "ES256"], user.key, message);
    expect(refused.code).toBe(1);
    expect(refused.bytes).toHaveLength(0);
    expect(refused.stderr).toMatch(
      /^aegis: the broker answered \[failed_precondition\] .*COMPROMISED.* \(reason: [A-Z_]+\)\n$/,
    );
  }, 300_000);

  it("refuses what it cannot send: an unknown algorithm, a malformed context, a user without a grant", async () => {
    const unknown = await aegis(["keys", "sign", "key_x", "--algorithm", "ES257"], operator.key, "x");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown signature algorithm; one of ES256");
    const badContext = await aegis(
      ["keys", "encrypt", "key_x", "--algorithm", "AES-GCM", "--context", "app"],
      operator.key,
    );
    expect(badContext.code).toBe(2);
    expect(badContext.stderr).toContain("expected context as key=value");
    const created = await aegis(["keys", "create", "--spec", "ed25519", "--activate"], operator.key);
    const keyId = idOf(created.stdout);
    const denied = await aegis(["keys", "sign", keyId, "--algorithm", "Ed25519"], operator.key, "hello");
    expect(denied.code).toBe(4);
    expect(denied.stderr).toMatch(/\(reason: MISSING_GRANT\)\n$/);
    const destroy = await aegis(["keys", "destroy", keyId, "--days", "7"], operator.key);
    expect(destroy.stdout).toMatch(/^state:\s+destruction-pending$/m);
    const cancelled = await aegis(["keys", "cancel-destroy", keyId], operator.key);
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).not.toMatch(/^state:\s+destruction-pending$/m);
  }, 120_000);
});
