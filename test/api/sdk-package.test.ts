// The npm package as a consumer gets it: `npm run build`, then `npm pack` of
// the repository (what its `prepare` step does, without re-running buf and
// prisma under the other tests' feet), `npm install` of the tarball into a
// fresh project with no dev tools. From there a plain Node ESM script verifies a
// broker-minted, DPoP-bound token with `aegis-broker/sdk`, redeems a lease
// and calls the broker through `aegis-broker/client`; a TypeScript consumer
// type-checks under strict settings (exactOptionalPropertyTypes, nodenext);
// the installed `aegis` runs a client command against a live broker.
import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type DescService, getOption } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialService } from "../../gen/proto/aegis/credential/v1/credential_pb.js";
import { GrantService } from "../../gen/proto/aegis/grant/v1/grant_pb.js";
import { LeaseService } from "../../gen/proto/aegis/lease/v1/lease_pb.js";
import { policy, Visibility } from "../../gen/proto/aegis/options/v1/options_pb.js";
import { TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import * as client from "../../src/sdk/client.js";
import { sealCredential } from "../../src/sdk/index.js";
import { registerEncryptionKey, startAgent } from "../support/agents.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { createActor, registerApi } from "../support/fixtures.js";

const repo = path.resolve(".");
const repoManifest = JSON.parse(readFileSync("package.json", "utf8")) as {
  version: string;
  devDependencies: Record<string, string>;
};
let work: string;
let consumer: string;
let entries: string[];
let manifest: Record<string, unknown>;

/** Runs a command without blocking this process: the broker under test answers from it. */
function run(
  command: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, encoding: "utf8", env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), "aegis-package-"));
  execFileSync("npm", ["run", "build"], { cwd: repo, stdio: "pipe" });
  execFileSync("npm", ["pack", "--ignore-scripts", "--pack-destination", work], { cwd: repo, stdio: "pipe" });
  const tarball = path.join(work, `aegis-broker-${repoManifest.version}.tgz`);
  entries = execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" }).trim().split("\n");
  manifest = JSON.parse(execFileSync("tar", ["-xzOf", tarball, "package/package.json"], { encoding: "utf8" }));

  consumer = path.join(work, "consumer");
  mkdirSync(consumer);
  writeFileSync(
    path.join(consumer, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module" }),
  );
  // The consumer's own @types/node, as a TypeScript project has; nothing else of the repository's tools.
  execFileSync(
    "npm",
    [
      "install",
      "--no-audit",
      "--no-fund",
      "--prefer-offline",
      tarball,
      `@types/node@${repoManifest.devDependencies["@types/node"]}`,
    ],
    { cwd: consumer, stdio: "pipe" },
  );
}, 180_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("the npm package", () => {
  it("holds the SDK, protocol/, the client CLI and generated descriptors, compiled: no test/, no broker", () => {
    const shipped =
      /^package\/(package\.json|README\.md|dist\/src\/(sdk|protocol|cli)\/[\w-]+\.(js|d\.ts)|dist\/gen\/proto\/[\w/-]+_pb\.(js|d\.ts))$/;
    expect(entries.filter((entry) => !shipped.test(entry))).toEqual([]);
    for (const file of ["src/sdk/index", "src/sdk/client", "src/cli/client-main", "src/protocol/access-token"]) {
      expect(entries).toContain(`package/dist/${file}.js`);
      expect(entries).toContain(`package/dist/${file}.d.ts`);
    }
    // Nothing of the broker: no server-side CLI commands, no database layer, no Prisma client.
    expect(
      entries.filter((entry) => /\/server-commands|\/main\.js|bin\.mjs|gen\/prisma|src\/(app|db)\//.test(entry)),
    ).toEqual([]);
  });

  it("has only public entry points, no install scripts, and only the dependencies its code imports", () => {
    expect(Object.keys(manifest.exports as object)).toEqual(["./sdk", "./client", "./package.json"]);
    expect(Object.keys((manifest.exports as Record<string, object>)["./sdk"] ?? {})[0]).toBe("types");
    // `prepare` (patch-package, generate, build) runs in a checkout and on `npm pack`, never on install.
    const installScripts = ["preinstall", "install", "postinstall"];
    expect(Object.keys(manifest.scripts as object).filter((name) => installScripts.includes(name))).toEqual([]);
    expect(manifest.private).toBeUndefined();
    expect(manifest.bin).toEqual({ aegis: "dist/src/cli/client-main.js" });
    expect(Object.keys(manifest.dependencies as object)).toEqual([
      "@bufbuild/protobuf",
      "@connectrpc/connect",
      "@connectrpc/connect-node",
      "commander",
      "jose",
    ]);
    const installed = readdirSync(path.join(consumer, "node_modules")).flatMap((name) =>
      name.startsWith("@") ? readdirSync(path.join(consumer, "node_modules", name)).map((n) => `${name}/${n}`) : [name],
    );
    for (const tool of ["tsx", "patch-package", "prisma", "@prisma/client", "@electric-sql/pglite", "typescript"]) {
      expect(installed).not.toContain(tool);
    }
  });

  it("exports the descriptor of every service with a public method, and of no private service", async () => {
    const services: DescService[] = [];
    const protoDir = path.join(repo, "gen/proto/aegis");
    for (const pkg of readdirSync(protoDir)) {
      for (const file of readdirSync(path.join(protoDir, pkg, "v1")).filter((f) => f.endsWith("_pb.ts"))) {
        const module = (await import(path.join(protoDir, pkg, "v1", file))) as Record<string, { kind?: string }>;
        services.push(...(Object.values(module).filter((value) => value?.kind === "service") as DescService[]));
      }
    }
    const isPublic = (service: DescService) =>
      service.methods.some((method) => getOption(method, policy).visibility !== Visibility.PRIVATE);
    const exported = Object.values(client).filter((value) => (value as { kind?: string })?.kind === "service");
    expect(new Set(exported)).toEqual(new Set(services.filter(isPublic)));
    expect(services.filter((service) => !isPublic(service)).map((service) => service.typeName)).toEqual([
      "aegis.tenant.v1.TenantService",
    ]);
  });

  it("type-checks in a TypeScript consumer under strict, exactOptionalPropertyTypes and nodenext", async () => {
    writeFileSync(
      path.join(consumer, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "nodenext",
          moduleResolution: "nodenext",
          strict: true,
          exactOptionalPropertyTypes: true,
          noUncheckedIndexedAccess: true,
          skipLibCheck: false,
          noEmit: true,
          types: ["node"],
        },
        files: ["check.ts"],
      }),
    );
    writeFileSync(
      path.join(consumer, "check.ts"),
      `import { type AccessTokenClaims, AegisCallError, mintAgentToken, redeemLease, requireScopes, verifyAccessToken } from "aegis-broker/sdk";
import { createClient, createConnectTransport, lease, LeaseService, PrincipalService } from "aegis-broker/client";

export async function check(token: string, apiKey: string): Promise<AccessTokenClaims> {
  const claims = await verifyAccessToken(token, { issuer: "https://aegis.example.com", audience: "payments", jwksUri: "https://aegis.example.com/.well-known/jwks.json" });
  requireScopes(claims, ["repo.read"]);
  const transport = createConnectTransport({ baseUrl: "https://aegis.example.com", httpVersion: "1.1" });
  const me = await createClient(PrincipalService, transport).whoAmI({}, { headers: { authorization: \`Bearer \${apiKey}\` } });
  const created = await createClient(LeaseService, transport).createLease({ maxUses: 1 });
  const state: lease.LeaseState | undefined = created.lease?.state;
  const agent = { brokerUrl: "https://aegis.example.com", dpopKey: { kty: "EC" } };
  const redeemed = await redeemLease(agent, await mintAgentToken(agent, apiKey, { scopes: ["a.b"] }), "lse_x", { kty: "OKP" });
  const refused: boolean = redeemed.secret === "" && new AegisCallError("c", "r", "m").reason === "r";
  console.log(me.principal?.id, state, refused);
  return claims;
}
// @ts-expect-error not an entry point of the package
import("aegis-broker/src/sdk/index.js");
`,
    );
    const tsc = await run(process.execPath, [path.join(repo, "node_modules/typescript/bin/tsc"), "-p", "."], consumer);
    expect(tsc.stdout + tsc.stderr).toBe("");
    expect(tsc.code).toBe(0);
  }, 120_000);

  it("runs `aegis --version` and tells where the broker itself runs", async () => {
    const aegis = path.join(consumer, "node_modules/.bin/aegis");
    expect(await run(aegis, ["--version"], consumer)).toMatchObject({ code: 0, stdout: `${repoManifest.version}\n` });
    const serve = await run(aegis, ["serve"], consumer);
    expect(serve.code).toBe(2);
    expect(serve.stderr).toContain("aegis: serve is not in the npm package");
    expect(serve.stderr).toContain("npm start");
  });
});

describe.each(databaseKinds)("the installed package against a live broker on %s", (kind) => {
  let t: TestBroker;
  beforeAll(async () => {
    t = await startTestBroker(kind);
  }, 120_000);
  afterAll(() => t.stop());

  /** An agent with a lease on a credential sealed for it, and a grant on the payments API. */
  async function world(api: string) {
    const target = { provider: "gcp", app: "billing-prod", account: "deploy-bot" };
    const selector = "provider:gcp:app:billing-prod:account:deploy-bot";
    const person = await createActor(t, {
      scopes: [
        "agent.register",
        "agent.key.add",
        "apikey.create",
        "grant.create",
        "resource_server.create",
        "credential.create:provider:gcp",
        "credential.lease.create:provider:gcp",
        "credential.lease.redeem:provider:gcp",
      ],
    });
    const agent = await startAgent(t, person.key, []);
    const leaseScopes = [`credential.lease.create:${selector}`, `credential.lease.redeem:${selector}`];
    for (const scope of leaseScopes) {
      await t.client(GrantService, { key: person.key }).createGrant({ principalId: agent.agentId, scope });
    }
    await registerApi(t, person.key, {
      identifier: api,
      scopes: ["repo.read"],
      grants: { [agent.agentId]: ["repo.read"] },
    });
    const secret = `sk-live-${crypto.randomUUID()}`;
    const mine = await registerEncryptionKey(t, person.key, person.principalId, "P-256");
    await t.client(CredentialService, { key: person.key }).registerCredential({
      target,
      displayName: "billing deploy key",
      sealedJwe: await sealCredential(secret, [
        { kid: mine.kid, jwk: mine.publicJwk },
        { kid: agent.encryption.kid, jwk: agent.encryption.publicJwk },
      ]),
    });
    const { lease } = await agent
      .client(LeaseService, await agent.token(leaseScopes))
      .createLease({ target, maxUses: 1 });
    return { person, agent, leaseScopes, secret, leaseId: lease?.id ?? "" };
  }

  it("verifies a broker token, redeems a lease and calls the broker from plain Node ESM", async () => {
    const { agent, leaseScopes, secret, leaseId } = await world("payments-sdk");
    writeFileSync(
      path.join(consumer, "agent.mjs"),
      `import { createDpopProof, mintAgentToken, redeemLease, requireScopes, verifyAccessToken } from "aegis-broker/sdk";
import { createClient, createConnectTransport, PrincipalService } from "aegis-broker/client";

const input = JSON.parse(process.env.AEGIS_TEST_INPUT);
const agent = { brokerUrl: input.brokerUrl, dpopKey: input.dpopKey };

// A token for the payments API, verified as that API would: offline, against the JWKS, with its DPoP proof.
const apiToken = await mintAgentToken(agent, input.apiKey, { audience: input.audience, scopes: ["repo.read"] });
const url = "https://payments.example.com/repos";
const claims = await verifyAccessToken(apiToken, {
  issuer: input.brokerUrl,
  audience: input.audience,
  jwksUri: input.brokerUrl + "/.well-known/jwks.json",
  dpop: { proof: await createDpopProof(input.dpopKey, { method: "GET", url, accessToken: apiToken }), method: "GET", url },
});
requireScopes(claims, ["repo.read"]);

const leaseToken = await mintAgentToken(agent, input.apiKey, { scopes: input.leaseScopes });
const redeemed = await redeemLease(agent, leaseToken, input.leaseId, input.encryptionKey);

const transport = createConnectTransport({ baseUrl: input.brokerUrl, httpVersion: "1.1" });
const me = await createClient(PrincipalService, transport).whoAmI({}, { headers: { authorization: "Bearer " + input.apiKey } });

console.log(JSON.stringify({ sub: claims.sub, aud: claims.aud, scope: claims.scope, ...redeemed, me: me.principal.id }));
`,
    );
    const input = {
      brokerUrl: t.broker.url,
      apiKey: agent.apiKey,
      dpopKey: agent.dpop.privateJwk,
      encryptionKey: agent.encryption.privateJwk,
      leaseId,
      leaseScopes,
      audience: "payments-sdk",
    };
    const result = await run(process.execPath, ["agent.mjs"], consumer, { AEGIS_TEST_INPUT: JSON.stringify(input) });
    expect(result.stderr).toBe("");
    expect(JSON.parse(result.stdout)).toEqual({
      sub: agent.agentId,
      aud: "payments-sdk",
      scope: "repo.read",
      secret,
      remainingUses: 0,
      keyId: agent.encryption.kid,
      credentialVersion: 1,
      me: agent.agentId,
    });
  });

  it("runs the README's scripts as they are written", async () => {
    const { agent, leaseId, person } = await world("payments");
    const scripts = new Map(
      [...readFileSync("README.md", "utf8").matchAll(/```js\n\/\/ (\w+\.mjs):[^\n]*\n([\s\S]*?)```/g)].map(
        ([, name, code]) => [name, code],
      ),
    );
    expect([...scripts.keys()]).toEqual(["verify.mjs", "agent.mjs", "whoami.mjs"]);
    for (const [name, code] of scripts) writeFileSync(path.join(consumer, name ?? ""), code ?? "");
    writeFileSync(path.join(consumer, "dpop.jwk"), JSON.stringify(agent.dpop.privateJwk));
    writeFileSync(path.join(consumer, "agent.jwk"), JSON.stringify(agent.encryption.privateJwk));
    const { accessToken } = await t
      .client(TokenService, { key: agent.apiKey })
      .mintToken({ audience: "payments", scopes: ["repo.read"] });
    const env = { AEGIS_SERVER: t.broker.url, AEGIS_API_KEY: agent.apiKey, LEASE_ID: leaseId, TOKEN: accessToken };

    expect(await run(process.execPath, ["verify.mjs"], consumer, env)).toEqual({
      code: 0,
      stdout: `verified: ${agent.agentId} repo.read\n`,
      stderr: "",
    });
    const forged = await run(process.execPath, ["verify.mjs"], consumer, { ...env, TOKEN: `${accessToken}x` });
    expect(forged).toEqual({ code: 0, stdout: "refused: invalid_token\n", stderr: "" });
    const secret = (await run(process.execPath, ["agent.mjs"], consumer, env)).stdout;
    expect(secret).toMatch(/^opened a secret of \d+ characters; 0 uses left\n$/);
    const whoami = await run(process.execPath, ["whoami.mjs"], consumer, { ...env, AEGIS_API_KEY: person.key });
    expect(whoami).toEqual({ code: 0, stdout: `${person.principalId} Test person\n`, stderr: "" });
  });

  it("runs a client command of the installed `aegis` against the broker", async () => {
    const person = await createActor(t, { scopes: ["agent.register", "agent.read", "apikey.create", "agent.key.add"] });
    const agent = await startAgent(t, person.key, []);
    const result = await run(
      path.join(consumer, "node_modules/.bin/aegis"),
      ["agents", "get", agent.agentId, "--json", "--server", t.broker.url],
      consumer,
      { AEGIS_API_KEY: person.key },
    );
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ id: agent.agentId, displayName: "deploy bot" });
  });
});
