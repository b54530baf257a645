// The embedded database's raw statements run as named prepared statements
// (src/db/pglite-prepared.ts): the rows are those PGlite's own `query`
// returns, a failure leaves nothing behind that breaks the next call, and a
// statement never runs inside someone else's open transaction.
import { PGlite } from "@electric-sql/pglite";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { preparedStatements } from "../../src/db/pglite-prepared.js";
import type { SqlQuery } from "../../src/db/sql.js";

describe("prepared statements on the embedded database", () => {
  let lite: PGlite;
  let sql: SqlQuery;
  beforeEach(async () => {
    lite = await PGlite.create();
    await lite.exec("CREATE TABLE item (id int PRIMARY KEY, name text)");
    sql = preparedStatements(lite);
  });
  afterEach(async () => {
    await lite.close();
  });

  it("returns the rows, typed, that PGlite's own query returns", async () => {
    const text = `SELECT $1::bigint AS big, $2::boolean AS yes, $3::timestamptz AS at, $4::text[] AS names,
      $5::text AS nothing, 'it''s'::text AS quoted`;
    const params = ["9007199254740993", true, new Date("2026-12-03T10:00:00.123Z"), ["a", 'b"c', null, "d,e"], null];
    const expected = (await lite.query(text, params)).rows;
    expect(await sql.query(text, params)).toEqual(expected);
    // Again, from the prepared statement this time.
    expect(await sql.query(text, params)).toEqual(expected);
    expect(expected[0]).toMatchObject({ big: 9007199254740993n, yes: true, names: ["a", 'b"c', null, "d,e"] });
  });

  it("answers a statement without rows with none, and writes what it says", async () => {
    expect(await sql.query("INSERT INTO item (id, name) VALUES ($1, $2)", [1, "one"])).toEqual([]);
    expect(await sql.query("SELECT name FROM item WHERE id = $1", [1])).toEqual([{ name: "one" }]);
  });

  it("throws the database's error and keeps working after it, prepared or not", async () => {
    const insert = "INSERT INTO item (id, name) VALUES ($1, $2)";
    await lite.exec("INSERT INTO item VALUES (2, 'two')");
    // Fails on its first call, after its statement was made.
    await expect(sql.query(insert, [2, "again"])).rejects.toMatchObject({ code: "23505" });
    expect(await sql.query(insert, [3, "three"])).toEqual([]);
    // Fails once prepared.
    await expect(sql.query(insert, [3, "again"])).rejects.toMatchObject({ code: "23505" });
    expect(await sql.query(insert, [4, "four"])).toEqual([]);
    // Does not parse at all.
    await expect(sql.query("SELEC nothing")).rejects.toMatchObject({ code: "42601" });
    expect(await sql.query("SELECT count(*)::int AS n FROM item")).toEqual([{ n: 3 }]);
    // Nothing that failed left a statement behind: the insert, the count and this query itself.
    expect(await sql.query("SELECT count(*)::int AS n FROM pg_prepared_statements")).toEqual([{ n: 3 }]);
  });

  it("waits for an open transaction instead of running inside it", async () => {
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const transaction = lite
      .transaction(async (tx) => {
        await tx.query("INSERT INTO item VALUES (1, 'uncommitted')");
        await held;
        await tx.rollback();
      })
      .catch(() => {});
    // Issued while the transaction holds the row; run inside it, it would see it.
    const counted = sql.query<{ n: number }>("SELECT count(*)::int AS n FROM item");
    release();
    await transaction;
    expect(await counted).toEqual([{ n: 0 }]);
  });
});
