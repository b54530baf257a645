// Reads the access policy each RPC declares in proto
// (`option (aegis.options.v1.policy)`), through the generated descriptors.
import { type DescMethod, type DescService, getOption, hasOption } from "@bufbuild/protobuf";
import {
  Authorization,
  type MethodPolicy,
  policy as policyOption,
  SenderConstraint,
  Visibility,
} from "../../gen/proto/aegis/options/v1/options_pb.js";
import { actionPattern } from "../protocol/scope.js";

export { Authorization, type MethodPolicy, SenderConstraint, Visibility };

const policies = new WeakMap<DescMethod, MethodPolicy | undefined>();

/** The method's declared policy; decoded from its options once, then remembered (every call asks). */
export function policyOf(method: DescMethod): MethodPolicy | undefined {
  if (!policies.has(method)) {
    policies.set(method, hasOption(method, policyOption) ? getOption(method, policyOption) : undefined);
  }
  return policies.get(method);
}

/** Everything wrong with a method's policy; empty when it is complete and consistent. */
export function policyProblems(method: DescMethod): string[] {
  const policy = policyOf(method);
  if (!policy) return ["no (aegis.options.v1.policy) option"];
  const problems: string[] = [];
  if (policy.visibility === Visibility.UNSPECIFIED) problems.push("visibility is unspecified");
  if (!actionPattern.test(policy.action)) problems.push(`action "${policy.action}" is not a dotted lower-case name`);
  if (policy.senderConstraint === SenderConstraint.UNSPECIFIED) problems.push("sender_constraint is unspecified");
  if (policy.authorization === Authorization.UNSPECIFIED) problems.push("authorization is unspecified");
  if (policy.authorization === Authorization.ANONYMOUS && policy.visibility !== Visibility.PUBLIC) {
    problems.push("only public RPCs may be anonymous");
  }
  if (policy.authorization === Authorization.ANONYMOUS && policy.senderConstraint === SenderConstraint.DPOP) {
    problems.push("an anonymous RPC cannot require DPoP");
  }
  if (policy.clientAuthentication && policy.authorization !== Authorization.SELF) {
    problems.push("client_authentication goes with AUTHORIZATION_SELF");
  }
  if (policy.clientAuthentication && !method.input.fields.some((f) => f.name === "client_assertion")) {
    problems.push(`client_authentication needs a client_assertion field in ${method.input.typeName}`);
  }
  if (policy.targetField && !method.input.fields.some((f) => f.name === policy.targetField)) {
    problems.push(`target_field "${policy.targetField}" is not a field of ${method.input.typeName}`);
  }
  return problems;
}

/**
 * Actions granted and checked by domain code rather than by the pipeline:
 * delegating leases (no RPC of its own) and introspection (its RPC lets a
 * resource server in without the grant, for its own tokens).
 */
export const handlerCheckedActions = ["credential.lease.delegate", "introspect.token"] as const;

/** The actions of every RPC in `services` that are authorized by grant, and those handlers check. */
export function grantableActions(services: readonly DescService[]): string[] {
  const actions = new Set<string>(handlerCheckedActions);
  for (const service of services) {
    for (const method of service.methods) {
      const policy = policyOf(method);
      if (policy?.authorization === Authorization.GRANT) actions.add(policy.action);
    }
  }
  return [...actions].sort();
}
