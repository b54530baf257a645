// AIP-203 field behaviour (google.api.field_behavior) declared in proto, read
// through the generated descriptors of every service the broker serves:
// request fields the broker requires are REQUIRED, fields it sets are
// OUTPUT_ONLY, fields fixed at creation are IMMUTABLE, and the annotations
// agree with the request rules (protovalidate) and the method policies.
import { create, type DescField, type DescMessage, getOption } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { policy } from "../../gen/proto/aegis/options/v1/options_pb.js";
import { field as fieldRules } from "../../gen/proto/buf/validate/validate_pb.js";
import { FieldBehavior, field_behavior } from "../../gen/proto/google/api/field_behavior_pb.js";
import { services } from "../../src/app/modules.js";
import { requestValidator } from "../../src/core/request-rules.js";

/** The message types of a message's fields (singular, list and map values). */
function fieldMessages(message: DescMessage): DescMessage[] {
  return message.fields.flatMap((f) => {
    if (f.fieldKind === "message") return [f.message];
    if (f.fieldKind === "list" && f.listKind === "message") return [f.message];
    if (f.fieldKind === "map" && f.mapKind === "message") return [f.message];
    return [];
  });
}

/** Every message reachable from `roots`, recursively, except google.protobuf's own. */
function reachable(roots: readonly DescMessage[]): Map<string, DescMessage> {
  const seen = new Map<string, DescMessage>();
  const walk = (m: DescMessage) => {
    if (m.typeName.startsWith("google.protobuf.") || seen.has(m.typeName)) return;
    seen.set(m.typeName, m);
    fieldMessages(m).forEach(walk);
  };
  roots.forEach(walk);
  return seen;
}

const methods = services.flatMap((s) => s.methods);
const requests = [...new Set(methods.map((m) => m.input))];
const responses = [...new Set(methods.map((m) => m.output))];
const fromRequests = reachable(requests);
const fromResponses = reachable(responses);
const all = new Map([...fromRequests, ...fromResponses]);
/** Messages returned by the broker that are not themselves a request or a response: resources. */
const resources = [...fromResponses.values()].filter((m) => !/(Request|Response)$/.test(m.name));
const fields = [...all.values()].flatMap((m) => m.fields);

const behaviour = (f: DescField) => getOption(f, field_behavior);
const has = (f: DescField, b: FieldBehavior) => behaviour(f).includes(b);
const fieldName = (f: DescField) => `${f.parent.typeName}.${f.name}`;
const marked = (b: FieldBehavior) => fields.filter((f) => has(f, b)).map(fieldName);

/** Top-level request fields whose protovalidate rules refuse an empty request. */
function refusedEmpty(): string[] {
  const validator = requestValidator(services);
  const refused = new Set<string>();
  for (const request of requests) {
    const result = validator.validate(request, create(request));
    if (result.kind === "error") throw result.error;
    if (result.kind !== "invalid") continue;
    for (const v of result.violations) {
      const top = v.field[0];
      if (top?.kind === "field") refused.add(fieldName(top));
    }
  }
  return [...refused];
}

// RevokeToken takes a jti or the token itself: neither alone is required.
const eitherOr = new Set(["aegis.token.v1.RevokeTokenRequest.jti"]);
/** The request field each method policy names as its target. */
const targets = methods.flatMap((m) => {
  const target = getOption(m, policy).targetField;
  const f = target ? m.input.fields.find((x) => x.name === target) : undefined;
  return f && !eitherOr.has(fieldName(f)) ? [f] : [];
});
/** Field 1 of a resource when it is its id (`id`, `lease_id`, …). */
const resourceIds = resources.flatMap((m) => m.fields.filter((f) => f.number === 1 && /(^|_)id$/.test(f.name)));
/** What only the broker ever writes: audit events, its signing keys, token sets. */
const brokerWritten = resources.filter((m) => ["AuditEvent", "Jwk", "SigningKey", "TokenSet"].includes(m.name));
/** Secrets the broker returns once. */
const secrets = [...fromResponses.values()].flatMap((m) =>
  m.fields.filter((f) => ["secret", "access_token", "refresh_token", "device_code"].includes(f.name)),
);

describe("field behaviour (AIP-203)", () => {
  it("walks every service's messages", () => {
    expect(services.length).toBeGreaterThanOrEqual(10);
    expect(resources.map((m) => m.name)).toEqual(
      expect.arrayContaining([
        "Tenant",
        "Principal",
        "Agent",
        "AgentKey",
        "ApiKey",
        "Credential",
        "Lease",
        "AuditEvent",
      ]),
    );
    // The shared target and the audit filter are found inside requests.
    expect([...fromRequests.keys()]).toEqual(
      expect.arrayContaining(["aegis.credential.v1.CredentialTarget", "aegis.audit.v1.AuditFilter"]),
    );
  });

  it("marks every field with a protovalidate `required` rule REQUIRED", () => {
    const required = fields.filter((f) => getOption(f, fieldRules).required);
    expect(required.length).toBeGreaterThanOrEqual(1);
    for (const f of required) expect(behaviour(f), fieldName(f)).toContain(FieldBehavior.REQUIRED);
  });

  it("marks REQUIRED every request field whose rules refuse the empty value", () => {
    const refused = refusedEmpty();
    // e.g. a tenant's name (pattern), an agent's display name (not_blank), a key's use (enum in).
    expect(refused).toEqual(
      expect.arrayContaining(["aegis.tenant.v1.CreateTenantRequest.name", "aegis.agent.v1.AddAgentKeyRequest.use"]),
    );
    const required = new Set(marked(FieldBehavior.REQUIRED));
    for (const name of refused) expect(required, name).toContain(name);
  });

  it("marks REQUIRED the request field each method policy names as its target", () => {
    expect(targets.length).toBeGreaterThanOrEqual(30);
    for (const f of targets) expect(behaviour(f), fieldName(f)).toContain(FieldBehavior.REQUIRED);
  });

  it("marks REQUIRED, beyond the rules and targets, exactly the fields the handlers insist on", () => {
    const byRuleOrTarget = new Set([...refusedEmpty(), ...targets.map(fieldName)]);
    expect(
      marked(FieldBehavior.REQUIRED)
        .filter((name) => !byRuleOrTarget.has(name))
        .sort(),
    ).toEqual(
      [
        // parseTarget refuses an empty provider, app or account.
        "aegis.credential.v1.CredentialTarget.account",
        "aegis.credential.v1.CredentialTarget.app",
        "aegis.credential.v1.CredentialTarget.provider",
        "aegis.credential.v1.RegisterCredentialRequest.sealed_jwe",
        "aegis.credential.v1.RegisterCredentialRequest.target",
        "aegis.credential.v1.UpdateCredentialRequest.sealed_jwe",
        "aegis.lease.v1.CreateLeaseRequest.target",
        "aegis.agent.v1.AddAgentKeyRequest.jwk_json",
        "aegis.grant.v1.CreateGrantRequest.scope",
        // isApplicationScope refuses an empty scope name.
        "aegis.resourceserver.v1.ResourceScope.name",
        "aegis.token.v1.IntrospectTokenRequest.token",
        "aegis.device.v1.BeginDeviceAuthorizationRequest.client_id",
        "aegis.device.v1.ExchangeDeviceCodeRequest.client_id",
        "aegis.device.v1.ExchangeDeviceCodeRequest.device_code",
        "aegis.device.v1.RefreshAccessTokenRequest.client_id",
        "aegis.device.v1.RefreshAccessTokenRequest.refresh_token",
        "aegis.device.v1.ApproveDeviceAuthorizationRequest.user_code",
        "aegis.device.v1.DenyDeviceAuthorizationRequest.user_code",
        // activeClient refuses an unknown client; an empty code matches no
        // code's hash; redirect_uri must equal the request's; the verifier
        // must match its pattern and the challenge (RFC 7636 §4.6).
        "aegis.device.v1.ExchangeAuthorizationCodeRequest.client_id",
        "aegis.device.v1.ExchangeAuthorizationCodeRequest.code",
        "aegis.device.v1.ExchangeAuthorizationCodeRequest.code_verifier",
        "aegis.device.v1.ExchangeAuthorizationCodeRequest.redirect_uri",
        // givableScope refuses an empty scope; findRole an empty role id.
        "aegis.role.v1.RoleScope.scope",
        "aegis.role.v1.AssignRoleRequest.role_id",
        "aegis.role.v1.UnassignRoleRequest.role_id",
        // A nested item's rule (min_len) that the top-level walk does not reach.
        "aegis.kms.v1.DecryptItem.ciphertext",
      ].sort(),
    );
  });

  it("marks the times and the id of every resource OUTPUT_ONLY", () => {
    const times = resources.flatMap((m) => m.fields.filter((f) => /(^|_)time$/.test(f.name)));
    expect(times.length).toBeGreaterThanOrEqual(20);
    for (const f of times) expect(behaviour(f), fieldName(f)).toContain(FieldBehavior.OUTPUT_ONLY);

    expect(resourceIds.map(fieldName)).toEqual(
      expect.arrayContaining(["aegis.tenant.v1.Tenant.id", "aegis.lease.v1.Lease.id"]),
    );
    for (const f of resourceIds) expect(behaviour(f), fieldName(f)).toContain(FieldBehavior.OUTPUT_ONLY);
  });

  it("marks secrets shown only once OUTPUT_ONLY", () => {
    expect(secrets.length).toBeGreaterThanOrEqual(6);
    for (const f of secrets) expect(behaviour(f), fieldName(f)).toContain(FieldBehavior.OUTPUT_ONLY);
  });

  it("marks OUTPUT_ONLY every field of what only the broker writes (audit events, keys, token sets)", () => {
    expect(brokerWritten).toHaveLength(4);
    for (const f of brokerWritten.flatMap((m) => m.fields))
      expect(behaviour(f), fieldName(f)).toContain(FieldBehavior.OUTPUT_ONLY);
  });

  it("marks OUTPUT_ONLY, beyond times, ids, secrets and broker-written messages, exactly the computed fields", () => {
    const byRule = new Set(
      [
        ...resources.flatMap((m) => m.fields.filter((f) => /(^|_)time$/.test(f.name))),
        ...resourceIds,
        ...secrets,
        ...brokerWritten.flatMap((m) => m.fields),
      ].map(fieldName),
    );
    expect(
      marked(FieldBehavior.OUTPUT_ONLY)
        .filter((name) => !byRule.has(name))
        .sort(),
    ).toEqual(
      [
        "aegis.principal.v1.Principal.tenant_id",
        "aegis.principal.v1.Principal.kind",
        "aegis.principal.v1.Principal.status",
        "aegis.grant.v1.Grant.granted_by",
        "aegis.credential.v1.Credential.owner_id",
        "aegis.credential.v1.Credential.version",
        "aegis.credential.v1.Credential.recipient_key_ids",
        "aegis.agent.v1.Agent.tenant_id",
        "aegis.agent.v1.Agent.status",
        "aegis.agent.v1.Agent.scopes",
        "aegis.agent.v1.AgentKey.thumbprint",
        "aegis.agent.v1.AgentKey.status",
        "aegis.apikey.v1.ApiKey.prefix",
        "aegis.lease.v1.Lease.credential_id",
        "aegis.lease.v1.Lease.created_by",
        "aegis.lease.v1.Lease.remaining_uses",
        "aegis.lease.v1.Lease.state",
        "aegis.device.v1.OAuthClient.disabled",
        "aegis.resourceserver.v1.ResourceServer.tenant_id",
        "aegis.resourceserver.v1.ResourceServer.principal_id",
        "aegis.resourceserver.v1.ResourceServer.built_in",
        "aegis.resourceserver.v1.ResourceScope.deprecated",
        "aegis.person.v1.Person.tenant_id",
        "aegis.person.v1.Person.status",
        "aegis.person.v1.Person.enrolled",
        "aegis.person.v1.Person.scopes",
        "aegis.person.v1.Enrollment.code",
        "aegis.person.v1.Enrollment.enrollment_uri",
        "aegis.person.v1.Enrollment.enrollment_uri_complete",
        "aegis.tenant.v1.CreateTenantResponse.login_client_id",
        "aegis.role.v1.Role.tenant_id",
        "aegis.role.v1.Role.built_in",
        "aegis.role.v1.RoleAssignment.assigned_by",
        "aegis.kms.v1.Key.tenant_id",
        "aegis.kms.v1.Key.state",
        "aegis.kms.v1.Key.current_version",
        "aegis.kms.v1.Key.created_by",
        "aegis.kms.v1.KeyVersion.version",
        "aegis.kms.v1.KeyVersion.current",
        "aegis.kms.v1.KeyVersion.usable",
      ].sort(),
    );
  });

  it("marks IMMUTABLE exactly the fields fixed when their resource is created", () => {
    expect(marked(FieldBehavior.IMMUTABLE).sort()).toEqual(
      [
        "aegis.agent.v1.Agent.owner_id",
        "aegis.agent.v1.AgentKey.agent_id",
        "aegis.agent.v1.AgentKey.alg",
        "aegis.agent.v1.AgentKey.jwk_json",
        "aegis.agent.v1.AgentKey.use",
        "aegis.apikey.v1.ApiKey.principal_id",
        "aegis.credential.v1.Credential.target",
        "aegis.grant.v1.Grant.principal_id",
        "aegis.grant.v1.Grant.scope",
        "aegis.grant.v1.Grant.resource_server_id",
        "aegis.resourceserver.v1.ResourceServer.identifier",
        "aegis.lease.v1.Lease.holder_id",
        "aegis.lease.v1.Lease.holder_jkt",
        "aegis.lease.v1.Lease.max_uses",
        "aegis.lease.v1.Lease.target",
        "aegis.tenant.v1.Tenant.name",
        "aegis.role.v1.Role.name",
        "aegis.role.v1.RoleAssignment.role_id",
        "aegis.role.v1.RoleAssignment.principal_id",
        "aegis.kms.v1.Key.spec",
        "aegis.kms.v1.Key.usage",
      ].sort(),
    );
  });

  it("never combines behaviours that contradict each other", () => {
    for (const f of fields) {
      const b = behaviour(f);
      const name = fieldName(f);
      expect(b.includes(FieldBehavior.REQUIRED) && b.includes(FieldBehavior.OUTPUT_ONLY), name).toBe(false);
      expect(b.includes(FieldBehavior.IMMUTABLE) && b.includes(FieldBehavior.OUTPUT_ONLY), name).toBe(false);
      expect(new Set(b).size, name).toBe(b.length);
    }
  });

  it("puts REQUIRED only where clients send it and OUTPUT_ONLY only where the broker answers", () => {
    for (const f of fields) {
      if (has(f, FieldBehavior.REQUIRED)) expect(fromRequests.has(f.parent.typeName), fieldName(f)).toBe(true);
      if (has(f, FieldBehavior.OUTPUT_ONLY)) expect(fromResponses.has(f.parent.typeName), fieldName(f)).toBe(true);
    }
    // Nothing a client sends at the top of a request is the broker's to set.
    for (const request of requests)
      for (const f of request.fields) expect(has(f, FieldBehavior.OUTPUT_ONLY), fieldName(f)).toBe(false);
  });
});
