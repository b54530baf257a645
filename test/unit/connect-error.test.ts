import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/proto/google/rpc/error_details_pb.js";
import { errorDomain, reasonOf, toConnectError } from "../../src/core/errors/connect-error.js";
import { DomainError, invalidArgument, missingGrant } from "../../src/core/errors/domain-error.js";

describe("toConnectError", () => {
  it("sends the reason as ErrorInfo in the aegis.broker domain, never the log-only detail", () => {
    const error = toConnectError(
      new DomainError("failed_precondition", "LEASE_EXPIRED", "the lease expired", { detail: "expired at 12:00" }),
    );
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.rawMessage).toBe("the lease expired");
    expect(errorDomain).toBe("aegis.broker");
    expect(error.findDetails(ErrorInfoSchema)).toEqual([
      expect.objectContaining({ reason: "LEASE_EXPIRED", domain: "aegis.broker", metadata: {} }),
    ]);
    expect(error.findDetails(BadRequestSchema)).toEqual([]);
    expect(error.findDetails(RetryInfoSchema)).toEqual([]);
    expect(JSON.stringify(error.findDetails(ErrorInfoSchema))).not.toContain("12:00");
    expect(reasonOf(error)).toBe("LEASE_EXPIRED");
  });

  it("lists every field violation in BadRequest", () => {
    const error = toConnectError(
      invalidArgument([
        { field: "name", description: "too short" },
        { field: "display_name", description: "too long" },
      ]),
    );
    expect(error.rawMessage).toBe("name: too short; display_name: too long");
    expect(error.findDetails(BadRequestSchema)[0]?.fieldViolations).toEqual([
      expect.objectContaining({ field: "name", description: "too short" }),
      expect.objectContaining({ field: "display_name", description: "too long" }),
    ]);
  });

  it("names the missing grant's action in ErrorInfo metadata", () => {
    const error = toConnectError(missingGrant("lease.create"));
    expect(error.rawMessage).toBe("missing grant for lease.create");
    expect(error.findDetails(ErrorInfoSchema)[0]?.metadata).toEqual({ action: "lease.create" });
  });

  it("turns Retry-After into RetryInfo and keeps the header", () => {
    const error = toConnectError(
      new DomainError("resource_exhausted", "RATE_LIMITED", "too many mints; retry in 7 s", {
        headers: { "retry-after": "7" },
      }),
    );
    expect(error.metadata.get("retry-after")).toBe("7");
    const delay = error.findDetails(RetryInfoSchema)[0]?.retryDelay;
    expect([delay?.seconds, delay?.nanos]).toEqual([7n, 0]);
  });

  it("gives a framework error an ErrorInfo from its code and keeps it otherwise as it is", () => {
    const raised = new ConnectError("deadline of 5 ms exceeded", Code.DeadlineExceeded);
    const error = toConnectError(raised);
    expect(error).toBe(raised);
    expect(error.rawMessage).toBe("deadline of 5 ms exceeded");
    expect(error.findDetails(ErrorInfoSchema)[0]).toMatchObject({ reason: "DEADLINE_EXCEEDED", domain: errorDomain });
    expect(toConnectError(error).findDetails(ErrorInfoSchema)).toHaveLength(1);
  });

  it("sends a bug as a bare internal error, its message kept for the log only", () => {
    const bug = new TypeError("cannot read properties of undefined (reading 'secret')");
    const error = toConnectError(bug);
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).toBe("internal error");
    expect(error.cause).toBe(bug);
    expect(error.findDetails(ErrorInfoSchema)[0]).toMatchObject({ reason: "INTERNAL", domain: errorDomain });
    expect(JSON.stringify(error.findDetails(ErrorInfoSchema))).not.toContain("secret");
  });
});
