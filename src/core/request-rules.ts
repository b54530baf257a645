// Request rules are declared in proto (`(buf.validate.field)` options, the
// limits an integrator reads beside each field) and enforced once, by
// protovalidate, before a handler runs (transport/request-validation.ts for
// RPCs; the pipeline's shared-policy step for the HTTP routes that stand for
// an RPC). Handlers and domain functions receive requests that already meet
// them, and keep only the checks that need configuration, the database or
// several fields at once.
//
// One validator serves the whole broker. protovalidate plans each message
// type's rules once and keeps the plan (compiled CEL and regular expressions
// included); `requestValidator` plans every RPC's request at start-up, so a
// rule that does not compile stops the broker instead of failing its calls.
import { create, createRegistry, type DescService } from "@bufbuild/protobuf";
import { createValidator, type Validator } from "@bufbuild/protovalidate";
import { file_aegis_options_v1_text } from "../../gen/proto/aegis/options/v1/text_pb.js";

/** The validator for every request of `services`, their rules planned now. */
export function requestValidator(services: readonly DescService[]): Validator {
  // Predefined rules (aegis/options/v1/text.proto) are extensions the
  // validator must be told about.
  const validator = createValidator({ registry: createRegistry(file_aegis_options_v1_text) });
  for (const service of services) {
    for (const method of service.methods) {
      const result = validator.validate(method.input, create(method.input));
      if (result.kind === "error") {
        throw new Error(`the rules of ${method.input.typeName} do not compile: ${result.error.message}`, {
          cause: result.error,
        });
      }
    }
  }
  return validator;
}
