// The one module that translates the database's error family into domain
// errors, whichever layer raised it: Prisma (its driver-adapter errors carry
// the driver's error as `cause`), node-postgres, or PGlite. Domain code checks
// for a clash before it writes, but two requests can pass that check at once;
// the loser's unique violation must still answer `already_exists` with the
// same reason the check would have given, never `internal`.
//
// Constraint names are PostgreSQL's defaults for Prisma's `@unique` and
// `@@unique` (`<table>_<columns>_key`), as in prisma/migrations.
import { DomainError } from "./domain-error.js";
import type { Reason } from "./reasons.js";

/** What a clash on each unique key means, in the words the domain check uses. */
const uniqueKeys: Readonly<Record<string, readonly [reason: Reason, message: string]>> = {
  tenant_name_key: ["TENANT_NAME_TAKEN", "a tenant with this name already exists"],
  grant_principal_id_scope_key: ["GRANT_EXISTS", "the principal already holds this scope"],
  credential_tenant_id_provider_app_account_key: [
    "CREDENTIAL_EXISTS",
    "a credential is already registered at this target",
  ],
  agent_key_principal_id_thumbprint_key: ["KEY_ALREADY_REGISTERED", "this key is already registered for the agent"],
  resource_server_identifier_key: [
    "RESOURCE_SERVER_EXISTS",
    "a resource server with this identifier is already registered",
  ],
  resource_grant_principal_id_resource_server_id_scope_key: ["GRANT_EXISTS", "the principal already holds this scope"],
  local_account_username_key: ["USERNAME_TAKEN", "this username is taken"],
  person_tenant_id_username_key: ["USERNAME_TAKEN", "this username is taken in the tenant"],
  person_tenant_id_email_key: ["EMAIL_TAKEN", "this email is taken in the tenant"],
  lease_created_by_idempotency_key_key: ["IDEMPOTENCY_KEY_REUSED", "this idempotency key was already used"],
  role_tenant_id_name_key: ["ROLE_EXISTS", "a role with this name already exists"],
  role_assignment_principal_id_role_id_key: ["ROLE_ASSIGNED", "the role is being assigned to this principal"],
};

/** SQLSTATEs (PostgreSQL appendix A) that mean "another transaction got there first; try again". */
const retryable = new Set(["40001", "40P01"]);

interface DriverError {
  readonly code?: unknown;
  readonly constraint?: unknown;
  readonly message?: unknown;
  readonly kind?: unknown;
}

/** The driver's own error inside whatever wraps it (Prisma puts it in `cause`). */
function driverErrorOf(error: unknown): DriverError | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    const candidate = current as DriverError & {
      cause?: unknown;
      meta?: { target?: unknown; driverAdapterError?: unknown };
    };
    // Prisma's own code for a unique violation (adapter-pg), with the driver's error in its meta.
    if (candidate.code === "P2002") {
      const target = candidate.meta?.target;
      const inner = driverErrorOf(candidate.meta?.driverAdapterError);
      return { ...inner, code: "23505", ...(typeof target === "string" ? { constraint: target } : {}) };
    }
    if (typeof candidate.code === "string" && /^[0-9A-Z]{5}$/.test(candidate.code) && !candidate.code.startsWith("P")) {
      return candidate;
    }
    if (candidate.kind === "UniqueConstraintViolation") {
      const index = (candidate.constraint as { index?: unknown } | undefined)?.index;
      return { ...candidate, code: "23505", constraint: typeof index === "string" ? index : candidate.constraint };
    }
    current = candidate.cause;
  }
  return undefined;
}

function constraintOf(driver: DriverError): string | undefined {
  if (typeof driver.constraint === "string") return driver.constraint;
  const named = typeof driver.message === "string" ? /unique constraint "([^"]+)"/.exec(driver.message) : null;
  return named?.[1];
}

/** The domain error a database failure stands for, or undefined when it is a bug or an outage to report as such. */
export function fromDatabaseError(error: unknown): DomainError | undefined {
  if (error instanceof DomainError) return error;
  const driver = driverErrorOf(error);
  if (!driver) return undefined;
  if (driver.code === "23505") {
    const constraint = constraintOf(driver);
    const [reason, message] = (constraint && uniqueKeys[constraint]) || ["ALREADY_EXISTS", "this already exists"];
    return new DomainError("already_exists", reason, message, { detail: `unique violation on ${constraint}` });
  }
  if (retryable.has(driver.code as string)) {
    return new DomainError("aborted", "CONCURRENT_UPDATE", "a concurrent change got there first; retry", {
      detail: `SQLSTATE ${String(driver.code)}`,
    });
  }
  return undefined;
}
