// The interceptor that enforces the request rules declared in proto (the
// validator is core/request-rules.ts): a request that breaks one is refused
// before its handler runs, as `invalid_argument` in the broker's error shape.
// It throws a DomainError, so the interceptors above treat the refusal like a
// handler's own (logged, translated, audited where the RPC audits refusals).
import { CompilationError, RuntimeError, ValidationError, type Validator } from "@bufbuild/protovalidate";
import { ConnectError, type Interceptor, type StreamResponse } from "@connectrpc/connect";
import { createValidateInterceptor } from "@connectrpc/validate";
import { fromViolations } from "../core/errors/validation-error.js";

export function validateRequests(validator: Validator): Interceptor {
  const validate = createValidateInterceptor({ validator });
  return (next) => {
    const validated = validate(next);
    return async (req) => {
      try {
        const res = await validated(req);
        return res.stream ? ({ ...res, message: translated(res.message) } as StreamResponse) : res;
      } catch (error) {
        throw translate(error);
      }
    };
  };
}

/** @connectrpc/validate's refusal in our shape; every other error as it was. */
function translate(error: unknown): unknown {
  if (!(error instanceof ConnectError)) return error;
  if (error.cause instanceof ValidationError) return fromViolations(error.cause.violations);
  // A rule that fails to compile or to evaluate is the broker's bug, not the
  // caller's: let it go out as `internal` (and be logged), not invalid_argument.
  if (error.cause instanceof CompilationError || error.cause instanceof RuntimeError) return error.cause;
  return error;
}

/** A handler reading a stream of requests meets a refusal midway, while its responses stream. */
async function* translated<T>(messages: AsyncIterable<T>): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (error) {
    throw translate(error);
  }
}
