// Request rules declared in proto, over the wire: a request that breaks one
// is refused with invalid_argument naming each field, before its handler
// runs (nothing written), after authentication and policy (a stranger hears
// only "unauthenticated"), logged and audited like any refusal, on every
// protocol and on the OAuth endpoint that stands for an RPC.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentService } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { CredentialService } from "../../gen/proto/aegis/credential/v1/credential_pb.js";
import { TenantService } from "../../gen/proto/aegis/tenant/v1/tenant_pb.js";
import { requestIdHeader } from "../../src/transport/pipeline.js";
import { protocols, startTestBroker, type TestBroker } from "../support/broker.js";
import { failure, fieldViolationsOf, reasonOf } from "../support/errors.js";
import { createActor } from "../support/fixtures.js";

describe("request validation", () => {
  let t: TestBroker;
  beforeAll(async () => {
    t = await startTestBroker("pglite");
  });
  afterAll(() => t.stop());

  const prisma = () => t.db.database.prisma;

  it.each(protocols)(
    "refuses a rule-breaking CreateTenant over %s, naming the field, and writes nothing",
    async (protocol) => {
      const tenantsBefore = await prisma().tenant.count();
      const eventsBefore = await prisma().auditEvent.count({ where: { action: "tenant.create", outcome: "success" } });

      const error = await failure(t.client(TenantService, { protocol }).createTenant({ name: "No Capitals" }));

      expect(error?.code).toBe(Code.InvalidArgument);
      expect(reasonOf(error)).toBe("INVALID_ARGUMENT");
      expect(fieldViolationsOf(error)).toEqual([
        { field: "name", description: "must be 3-63 lower-case letters, digits or '-', starting with a letter" },
      ]);
      expect(error?.rawMessage).toBe("name: must be 3-63 lower-case letters, digits or '-', starting with a letter");
      expect(await prisma().tenant.count()).toBe(tenantsBefore);
      expect(await prisma().auditEvent.count({ where: { action: "tenant.create", outcome: "success" } })).toBe(
        eventsBefore,
      );
    },
  );

  it("gives the refusal a request id and one log line, like every error", async () => {
    const error = await failure(t.client(TenantService).listTenants({ pageSize: 501 }));
    expect(fieldViolationsOf(error).map((v) => v.field)).toEqual(["page_size"]);
    const requestId = error?.metadata.get(requestIdHeader) ?? "";
    expect(requestId).toMatch(/^req_/);
    const line = t.logs.map((l) => JSON.parse(l)).find((l) => l.requestId === requestId);
    expect(line).toMatchObject({
      procedure: "aegis.tenant.v1.TenantService/ListTenants",
      code: "InvalidArgument",
      reason: "INVALID_ARGUMENT",
    });
  });

  it("names every broken rule of RegisterAgent, map keys and list items included, and registers nothing", async () => {
    const person = await createActor(t, { scopes: ["agent.register"] });
    const before = await prisma().principal.count({ where: { tenantId: person.tenantId } });

    const error = await failure(
      t.client(AgentService, { key: person.key }).registerAgent({
        displayName: " \u00a0\t",
        description: "bell\u0007",
        metadata: { "": "empty key", team: "x".repeat(201) },
        scopes: Array.from({ length: 51 }, (_, i) => `agent.read.${i}`),
      }),
    );

    expect(error?.code).toBe(Code.InvalidArgument);
    expect(fieldViolationsOf(error)).toEqual([
      { field: "display_name", description: "must not be empty or only white space" },
      {
        field: "description",
        description: "must be printable text (no control characters other than tab and newline)",
      },
      { field: 'metadata[""]', description: "key must be at least 1 characters" },
      { field: 'metadata["team"]', description: "must be at most 200 characters" },
      { field: "scopes", description: "must contain no more than 50 item(s)" },
    ]);
    expect(await prisma().principal.count({ where: { tenantId: person.tenantId } })).toBe(before);
  });

  it("answers a stranger unauthenticated, and a caller without the grant permission_denied, before any rule", async () => {
    const stranger = await failure(t.client(TenantService, { key: undefined }).createTenant({ name: "No Capitals" }));
    expect(stranger?.code).toBe(Code.Unauthenticated);
    expect(fieldViolationsOf(stranger)).toEqual([]);

    const member = await createActor(t);
    const denied = await failure(t.client(AgentService, { key: member.key }).registerAgent({ displayName: "" }));
    expect(denied?.code).toBe(Code.PermissionDenied);
    expect(fieldViolationsOf(denied)).toEqual([]);
  });

  it("audits a refused argument on an RPC that audits every refusal, and stores nothing", async () => {
    const owner = await createActor(t, { scopes: ["credential.create:provider:gcp"] });
    const error = await failure(
      t.client(CredentialService, { key: owner.key }).registerCredential({
        target: { provider: "gcp", app: "billing", account: "reader" },
        displayName: "two\nlines",
        sealedJwe: "{}",
      }),
    );
    // The rule refuses before the handler could look at the sealed JWE.
    expect(fieldViolationsOf(error).map((v) => v.field)).toEqual(["display_name"]);
    const denial = await prisma().auditEvent.findFirst({
      where: { action: "credential.create", outcome: "denied", actorId: owner.principalId },
    });
    expect(denial?.reason).toContain("INVALID_ARGUMENT");
    expect(await prisma().credential.count({ where: { tenantId: owner.tenantId } })).toBe(0);
  });

  it("applies MintToken's rules to the OAuth token endpoint", async () => {
    const agent = await createActor(t, { kind: "agent" });
    const response = await fetch(`${t.broker.url}/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", client_secret: agent.key, audience: "two words" }),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: string; error_description: string };
    expect(body.error).toBe("invalid_request");
    expect(body.error_description).toBe("audience: must not contain white space");
  });
});
