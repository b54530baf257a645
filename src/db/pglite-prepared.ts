// The embedded database's raw statements (database.ts `sql`) as named
// prepared statements, each sent in one exchange with the engine.
//
// PGlite's own `query` re-parses and re-plans its statement on every call
// and crosses into the engine six times (parse, describe, bind, describe,
// execute, sync), where a driver of a PostgreSQL server sends them at once.
// The statements on `sql` are the broker's few hot ones, fixed texts run
// thousands of times a second: each is parsed once (the first Parse rides
// with the first call) and every call after is bind, describe, execute and
// sync in a single `execProtocol`. Measured on the bench host: an audit
// batch of 16 events went from 475 to 315 µs, one of a single event from
// 239 to 89 µs.
//
// Parameters are sent as text the way node-postgres prepares them (the
// PostgreSQL path runs the same statements through it); columns are parsed
// with PGlite's own type parsers, so rows look as `query` returns them. Each
// call holds PGlite's locks as `query` does: it waits for an open
// transaction and runs alone.
import { type PGlite, types } from "@electric-sql/pglite";
import utils from "pg/lib/utils.js";
import { serialize } from "pg-protocol";
import type { SqlQuery } from "./sql.js";

/** At most this many distinct texts are kept prepared; the hot ones are a handful. */
const maxPrepared = 64;

interface RowDescription {
  readonly name: "rowDescription";
  readonly fields: readonly { readonly name: string; readonly dataTypeID: number }[];
}
interface DataRow {
  readonly name: "dataRow";
  readonly fields: readonly (string | null)[];
}

export function preparedStatements(lite: PGlite): SqlQuery {
  const prepared = new Map<string, string>();
  let made = 0;
  const run = async <Row>(sql: string, params: readonly unknown[]): Promise<Row[]> => {
    let name = prepared.get(sql);
    const parts: Buffer[] = [];
    const fresh = name === undefined;
    if (name === undefined) {
      name = `aegis_prepared_${made++}`;
      parts.push(serialize.parse({ name, text: sql }));
    }
    parts.push(
      serialize.bind({ statement: name, values: params.map((value) => utils.prepareValue(value)) }),
      serialize.describe({ type: "P" }),
      serialize.execute({}),
      serialize.sync(),
    );
    let messages: readonly { name: string }[];
    try {
      ({ messages } = await lite.execProtocol(Buffer.concat(parts)));
    } catch (error) {
      // The statement may or may not have been made before the failure: drop it either way.
      if (fresh) await lite.execProtocol(closing(name), { throwOnError: false });
      throw error;
    }
    if (fresh && prepared.size < maxPrepared) prepared.set(sql, name);
    else if (fresh) await lite.execProtocol(closing(name), { throwOnError: false });
    return rowsOf<Row>(messages, lite.parsers);
  };
  return {
    query: (sql, params = []) => lite._runExclusiveTransaction(() => lite._runExclusiveQuery(() => run(sql, params))),
  };
}

function closing(name: string): Buffer {
  return Buffer.concat([serialize.close({ type: "S", name }), serialize.sync()]);
}

function rowsOf<Row>(messages: readonly { name: string }[], parsers: PGlite["parsers"]): Row[] {
  const description = messages.find((m): m is RowDescription => m.name === "rowDescription");
  if (!description) return [];
  const rows: Row[] = [];
  for (const message of messages) {
    if (message.name !== "dataRow") continue;
    const row: Record<string, unknown> = {};
    (message as DataRow).fields.forEach((value, i) => {
      const field = description.fields[i] as RowDescription["fields"][number];
      row[field.name] = value === null ? null : types.parseType(value, field.dataTypeID, parsers);
    });
    rows.push(row as Row);
  }
  return rows;
}
