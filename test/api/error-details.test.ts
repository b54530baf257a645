// Errors carry the standard google.rpc details (AIP-193) on every transport,
// so generic gRPC tools decode them: ErrorInfo with the stable reason in the
// `aegis.broker` domain, BadRequest naming each invalid field, RetryInfo
// beside Retry-After. The wire message and code stay what they were.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentService } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { TenantService } from "../../gen/proto/aegis/tenant/v1/tenant_pb.js";
import { ErrorInfoSchema, RetryInfoSchema } from "../../gen/proto/google/rpc/error_details_pb.js";
import { generateCredential } from "../../src/protocol/credential-format.js";
import { protocols, startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { failure, fieldViolationsOf } from "../support/errors.js";
import { createActor } from "../support/fixtures.js";

/** The type names of the details as received: what a generic tool sees. */
const detailTypes = (error: { details: unknown[] } | undefined) =>
  (error?.details ?? []).map((d) => (d as { type: string }).type);

describe.each(databaseKinds)("standard error details on %s", (kind) => {
  let t: TestBroker;
  beforeAll(async () => {
    // A low failed-authentication limit, so the last test reaches it quickly.
    t = await startTestBroker(kind, { AEGIS_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: "2" });
  });
  afterAll(() => t.stop());

  it.each(protocols)("sends ErrorInfo and BadRequest for a bad CreateTenant over %s", async (protocol) => {
    const error = await failure(
      t.client(TenantService, { protocol, key: t.adminKey }).createTenant({ name: "Bad Name!", displayName: "x" }),
    );
    expect(error?.code).toBe(Code.InvalidArgument);
    expect(error?.rawMessage).toBe("name: must be 3-63 lower-case letters, digits or '-', starting with a letter");
    expect(detailTypes(error)).toEqual(["google.rpc.ErrorInfo", "google.rpc.BadRequest"]);
    const [info] = error?.findDetails(ErrorInfoSchema) ?? [];
    expect(info).toMatchObject({ reason: "INVALID_ARGUMENT", domain: "aegis.broker", metadata: {} });
    expect(fieldViolationsOf(error)).toEqual([
      { field: "name", description: "must be 3-63 lower-case letters, digits or '-', starting with a letter" },
    ]);
  });

  it.each(protocols)("sends ErrorInfo naming the missing grant's action over %s", async (protocol) => {
    const member = await createActor(t);
    const error = await failure(
      t.client(AgentService, { protocol, key: member.key }).registerAgent({ displayName: "Nope" }),
    );
    expect(error?.code).toBe(Code.PermissionDenied);
    expect(error?.rawMessage).toBe("missing grant for agent.register");
    expect(detailTypes(error)).toEqual(["google.rpc.ErrorInfo"]);
    expect(error?.findDetails(ErrorInfoSchema)).toEqual([
      expect.objectContaining({
        reason: "MISSING_GRANT",
        domain: "aegis.broker",
        metadata: { action: "agent.register" },
      }),
    ]);
  });

  it.each(protocols)("sends a bare ErrorInfo for an elevated-only RPC over %s", async (protocol) => {
    const member = await createActor(t, { scopes: ["tenant.create"] });
    const error = await failure(t.client(TenantService, { protocol, key: member.key }).createTenant({ name: "nope" }));
    expect(error?.code).toBe(Code.PermissionDenied);
    expect(error?.rawMessage).toBe("this method needs the elevated grant");
    expect(error?.findDetails(ErrorInfoSchema)[0]).toMatchObject({
      reason: "ELEVATED_GRANT_REQUIRED",
      domain: "aegis.broker",
      metadata: {},
    });
  });

  it("sends RetryInfo with the Retry-After delay once failed authentications are over the limit", async () => {
    const guess = (protocol: (typeof protocols)[number]) =>
      failure(t.client(PrincipalService, { protocol, key: generateCredential("apiKey").text }).whoAmI({}));
    const first = await guess("grpc");
    // Vague on the wire: the reason says only that authentication failed.
    expect(first?.findDetails(ErrorInfoSchema)[0]).toMatchObject({ reason: "UNAUTHENTICATED", metadata: {} });
    await guess("grpc");
    for (const protocol of protocols) {
      const refused = await guess(protocol);
      expect(refused?.code).toBe(Code.ResourceExhausted);
      expect(refused?.findDetails(ErrorInfoSchema)[0]?.reason).toBe("RATE_LIMITED");
      const delay = refused?.findDetails(RetryInfoSchema)[0]?.retryDelay;
      expect(Number(delay?.seconds)).toBeGreaterThan(0);
      expect(Number(delay?.seconds)).toBeLessThanOrEqual(60);
      expect(String(delay?.seconds)).toBe(refused?.metadata.get("retry-after"));
    }
  });
});
