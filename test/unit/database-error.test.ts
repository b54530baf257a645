// The database's error family, as each layer raises it, becomes one domain error.
import { describe, expect, it } from "vitest";
import { fromDatabaseError } from "../../src/core/errors/database-error.js";
import { DomainError } from "../../src/core/errors/domain-error.js";

const pgUnique = { code: "23505", constraint: "tenant_name_key", message: "duplicate key value" };
const pgliteUnique = { code: "23505", message: 'duplicate key value violates unique constraint "tenant_name_key"' };

describe("fromDatabaseError", () => {
  it.each([
    ["node-postgres", Object.assign(new Error("dup"), pgUnique)],
    ["PGlite", Object.assign(new Error("dup"), pgliteUnique)],
    [
      "Prisma's driver-adapter error around PGlite's",
      Object.assign(new Error("x"), { cause: { kind: "postgres", ...pgliteUnique } }),
    ],
    [
      "Prisma's adapter-pg error around node-postgres'",
      Object.assign(new Error("x"), { cause: Object.assign(new Error("d"), pgUnique) }),
    ],
    ["Prisma's P2002", Object.assign(new Error("x"), { code: "P2002", meta: { target: "tenant_name_key" } })],
    [
      "Prisma's P2002 from adapter-pg",
      Object.assign(new Error("x"), {
        code: "P2002",
        meta: {
          modelName: "Tenant",
          driverAdapterError: {
            name: "DriverAdapterError",
            cause: { kind: "UniqueConstraintViolation", constraint: { index: "tenant_name_key" }, table: "tenant" },
          },
        },
      }),
    ],
  ])("names the clash from %s with the domain's reason", (_, error) => {
    expect(fromDatabaseError(error)).toMatchObject({ code: "already_exists", reason: "TENANT_NAME_TAKEN" });
  });

  it("answers a clash on an unmapped key with a generic already_exists", () => {
    expect(fromDatabaseError({ code: "23505", constraint: "some_new_key" })).toMatchObject({
      code: "already_exists",
      reason: "ALREADY_EXISTS",
    });
  });

  it.each(["40001", "40P01"])("asks for a retry on SQLSTATE %s", (code) => {
    expect(fromDatabaseError({ code })).toMatchObject({ code: "aborted", reason: "CONCURRENT_UPDATE" });
  });

  it("leaves bugs and outages alone, and domain errors as they are", () => {
    expect(fromDatabaseError(new Error("boom"))).toBeUndefined();
    expect(fromDatabaseError({ code: "42P01" })).toBeUndefined();
    expect(fromDatabaseError({ code: "ECONNREFUSED" })).toBeUndefined();
    const domain = new DomainError("not_found", "TENANT_NOT_FOUND", "x");
    expect(fromDatabaseError(domain)).toBe(domain);
  });
});
