// The closed set of failures domain code may report. Domain functions throw
// DomainError and nothing else on purpose; the transports translate it once
// (src/errors/connect-error.ts for RPCs). Anything else that escapes is a bug
// and goes out as a generic `internal` error, never with its message.

import type { Reason } from "./reasons.js";

export const domainErrorCodes = [
  "invalid_argument",
  "not_found",
  "already_exists",
  "unauthenticated",
  "permission_denied",
  "failed_precondition",
  "aborted",
  "resource_exhausted",
  "deadline_exceeded",
  "unavailable",
] as const;

export type DomainErrorCode = (typeof domainErrorCodes)[number];

export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

export class DomainError extends Error {
  override name = "DomainError";
  /** Set once the refusal is in the audit trail, so it is written exactly once. */
  audited = false;

  /**
   * @param code what kind of failure, mapped to a Connect code
   * @param reason stable reason sent to clients, from the closed set in reasons.ts
   * @param message text for clients; must never contain secrets
   * @param detail what happened precisely, for logs and audit only (never sent)
   */
  constructor(
    readonly code: DomainErrorCode,
    readonly reason: Reason,
    message: string,
    readonly options: {
      readonly fieldViolations?: readonly FieldViolation[];
      readonly detail?: string;
      /**
       * A few facts a client may act on, sent as `ErrorInfo.metadata`
       * (lowerCamelCase keys, AIP-193). Sent to clients: never secrets, never
       * what belongs in `detail`.
       */
      readonly metadata?: Readonly<Record<string, string>>;
      /** Response headers the client needs, e.g. `DPoP-Nonce` or `Retry-After`. */
      readonly headers?: Readonly<Record<string, string>>;
    } = {},
  ) {
    super(message);
  }

  get fieldViolations(): readonly FieldViolation[] {
    return this.options.fieldViolations ?? [];
  }

  get metadata(): Readonly<Record<string, string>> {
    return this.options.metadata ?? {};
  }

  /** The precise cause, for logs and the audit trail; falls back to the reason. */
  get detail(): string {
    return this.options.detail ?? this.reason;
  }

  /** The `reason` column of the refusal's audit event: the reason, then the detail when it adds any. */
  get auditReason(): string {
    return (this.detail === this.reason ? this.reason : `${this.reason}: ${this.detail}`).slice(0, 500);
  }
}

/** Bad input: one error naming every invalid field. */
export function invalidArgument(violations: readonly FieldViolation[]): DomainError {
  const summary = violations.map((v) => `${v.field}: ${v.description}`).join("; ");
  return new DomainError("invalid_argument", "INVALID_ARGUMENT", summary, { fieldViolations: violations });
}

export function notFound(what: string, reason: Reason): DomainError {
  return new DomainError("not_found", reason, `${what} not found`);
}

/**
 * Authentication failures are deliberately vague on the wire (which check
 * failed helps an attacker); the precise reason goes to the log and audit.
 */
export function unauthenticated(detail: string, headers?: Record<string, string>): DomainError {
  return new DomainError("unauthenticated", "UNAUTHENTICATED", "unauthenticated", { detail, headers });
}

/**
 * A valid credential on a call that must prove possession of a key (RFC 9449
 * §7.1): a bearer credential, or a token not bound to the proof's key.
 */
export function dpopRequired(): DomainError {
  return new DomainError(
    "unauthenticated",
    "DPOP_REQUIRED",
    "this method needs a DPoP-bound token and a DPoP proof of its key (RFC 9449)",
  );
}

/** A DPoP proof that fails any check (RFC 9449 `invalid_dpop_proof`); the wire says only that. */
export function invalidDpopProof(detail: string): DomainError {
  return new DomainError("unauthenticated", "INVALID_DPOP_PROOF", "invalid DPoP proof", { detail });
}

export function permissionDenied(reason: Reason, message: string, detail?: string): DomainError {
  return new DomainError("permission_denied", reason, message, detail === undefined ? {} : { detail });
}

/** The caller holds no grant for `action`; the action is public (proto options), so the client is told which. */
export function missingGrant(action: string): DomainError {
  return new DomainError("permission_denied", "MISSING_GRANT", `missing grant for ${action}`, { metadata: { action } });
}
