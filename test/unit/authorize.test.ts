import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { MethodPolicySchema } from "../../gen/proto/aegis/options/v1/options_pb.js";
import type { Caller } from "../../src/core/caller.js";
import { authorize } from "../../src/policy/authorize.js";
import { Authorization, SenderConstraint, Visibility } from "../../src/policy/method-policy.js";
import { ScopeSet } from "../../src/protocol/scope.js";

const policy = (
  overrides: Partial<{
    visibility: Visibility;
    authorization: Authorization;
    senderConstraint: SenderConstraint;
    action: string;
  }> = {},
) =>
  create(MethodPolicySchema, {
    visibility: Visibility.PUBLIC,
    action: "tenant.read",
    senderConstraint: SenderConstraint.NONE,
    authorization: Authorization.GRANT,
    ...overrides,
  });

const caller = (scopes: string[], extra: Partial<Caller> = {}): Caller => ({
  principalId: "prn_aaaaaaaaaaaaaaaaaaaa",
  tenantId: "ten_aaaaaaaaaaaaaaaaaaaa",
  kind: "person",
  scopes: new ScopeSet(scopes),
  credentialType: "api_key",
  credentialId: "k",
  ...extra,
});

describe("authorize", () => {
  it.each([
    ["a grant for the action", policy(), caller(["tenant.read"])],
    ["any caller on a self-service RPC", policy({ authorization: Authorization.SELF }), caller([])],
    ["nobody on an anonymous public RPC", policy({ authorization: Authorization.ANONYMOUS }), undefined],
    [
      "the elevated grant plus the action on a private RPC",
      policy({ visibility: Visibility.PRIVATE }),
      caller(["broker.admin", "tenant.read"]),
    ],
    [
      "a DPoP-proven caller on a DPoP RPC",
      policy({ senderConstraint: SenderConstraint.DPOP }),
      caller(["tenant.read"], { dpopJkt: "x" }),
    ],
    [
      "a grant with a selector on a target action (the handler checks the target)",
      policy({ action: "credential.lease.redeem" }),
      caller(["credential.lease.redeem:provider:gcp:app:*:account:*"]),
    ],
  ])("allows %s", (_, p, c) => {
    expect(authorize(p, c)).toBeUndefined();
  });

  it.each([
    ["no policy at all", undefined, caller(["tenant.read"]), "POLICY_MISSING"],
    [
      "an unspecified visibility",
      policy({ visibility: Visibility.UNSPECIFIED }),
      caller(["tenant.read"]),
      "POLICY_MISSING",
    ],
    [
      "an unspecified authorization",
      policy({ authorization: Authorization.UNSPECIFIED }),
      caller(["tenant.read"]),
      "POLICY_INVALID",
    ],
    [
      "an unspecified sender constraint",
      policy({ senderConstraint: SenderConstraint.UNSPECIFIED }),
      caller(["tenant.read"]),
      "POLICY_INVALID",
    ],
    [
      "a private anonymous RPC",
      policy({ visibility: Visibility.PRIVATE, authorization: Authorization.ANONYMOUS }),
      undefined,
      "POLICY_INVALID",
    ],
    ["no caller", policy(), undefined, "UNAUTHENTICATED"],
    ["a caller without the grant", policy(), caller(["tenant.list"]), "MISSING_GRANT"],
    ["a caller with a longer scope only", policy(), caller(["tenant.read:tenant:x"]), "MISSING_GRANT"],
    ["a caller with a prefix of the action only", policy(), caller(["tenant"]), "MISSING_GRANT"],
    [
      "the action without the elevated grant on a private RPC",
      policy({ visibility: Visibility.PRIVATE }),
      caller(["tenant.read"]),
      "ELEVATED_GRANT_REQUIRED",
    ],
    [
      "the elevated grant without the action",
      policy({ visibility: Visibility.PRIVATE }),
      caller(["broker.admin"]),
      "MISSING_GRANT",
    ],
    [
      "a bearer caller on a DPoP RPC",
      policy({ senderConstraint: SenderConstraint.DPOP }),
      caller(["tenant.read"]),
      "DPOP_REQUIRED",
    ],
    [
      "an action-only grant on a target action",
      policy({ action: "credential.lease.redeem" }),
      caller(["credential.lease.redeem"]),
      "MISSING_GRANT",
    ],
    [
      "a selector grant of another target action",
      policy({ action: "credential.lease.redeem" }),
      caller(["credential.lease.create:provider:gcp:app:x:account:y"]),
      "MISSING_GRANT",
    ],
  ])("denies %s", (_, p, c, reason) => {
    expect(authorize(p, c)?.reason).toBe(reason);
  });
});
