// The one function that turns protovalidate's verdict on a request into the
// broker's error shape: `invalid_argument`, reason INVALID_ARGUMENT, one field
// violation per broken rule, the field named by its proto path (`name`,
// `filter.end_time`, `scopes[2]`, `metadata["env"]`). A rule declared in proto
// and a check written in TypeScript look the same to clients; when the error
// detail type changes, this is the only mapping to re-point.
import { pathToString } from "@bufbuild/protobuf/reflect";
import type { Violation } from "@bufbuild/protovalidate";
import { type DomainError, invalidArgument } from "./domain-error.js";

export function fromViolations(violations: readonly Violation[]): DomainError {
  return invalidArgument(
    violations.map((v) => ({
      field: pathToString(v.field),
      // A map entry is named by its key; say when the key itself is wrong.
      description: v.forKey ? `key ${v.message}` : v.message,
    })),
  );
}
