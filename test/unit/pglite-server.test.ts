// The embedded database served to several clients over the PostgreSQL wire
// protocol (src/db/pglite-server.ts): every client sees a database of its
// own, although PGlite is one session underneath.
import { mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type PgliteServer, readyStatus, servePglite } from "../../src/db/pglite-server.js";

describe("servePglite", () => {
  let lite: PGlite;
  let server: PgliteServer;
  let socketDir: string;
  const pools: pg.Pool[] = [];
  const pool = (max = 4) => {
    const created = new pg.Pool({ connectionString: server.url, max });
    created.on("error", () => {});
    pools.push(created);
    return created;
  };

  beforeEach(async () => {
    lite = new PGlite();
    socketDir = path.join(mkdtempSync(path.join(tmpdir(), "aegis-pglite-server-")), "run");
    server = await servePglite(lite, socketDir, pino({ level: "silent" }));
    await pool().query("CREATE TABLE item (id int PRIMARY KEY, owner text NOT NULL)");
  });

  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.end()));
    await server.close();
    await lite.close();
  });

  it("lets only its owner reach the socket", () => {
    expect(statSync(socketDir).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(socketDir, ".s.PGSQL.5432")).mode & 0o777).toBe(0o600);
  });

  it("keeps another client's statements out of an open transaction", async () => {
    const a = await pool().connect();
    const b = pool();
    await a.query("BEGIN");
    await a.query("INSERT INTO item VALUES (1, 'a')");
    // b's insert waits for a's transaction to end; had it run inside it, the rollback would take it too.
    const waitsForSession = vi.spyOn(lite, "runExclusive");
    let settled = false;
    const inserted = b.query("INSERT INTO item VALUES (2, 'b')").finally(() => {
      settled = true;
    });
    // a rolls back once b waits its turn for the session (or, were it let in, has run).
    await vi.waitFor(() => expect(waitsForSession.mock.calls.length > 0 || settled).toBe(true), { interval: 5 });
    await a.query("ROLLBACK");
    a.release();
    await inserted;
    expect((await b.query("SELECT id FROM item ORDER BY id")).rows).toEqual([{ id: 2 }]);
  });

  it("answers every client's parameterised queries with its own results under concurrency", async () => {
    const clients = [pool(8), pool(8)];
    const answers = await Promise.all(
      Array.from({ length: 400 }, (_, i) =>
        (clients[i % 2] as pg.Pool).query<{ n: number; s: string }>("SELECT $1::int AS n, $2::text AS s", [i, `q${i}`]),
      ),
    );
    expect(answers.map((answer) => answer.rows)).toEqual(answers.map((_, i) => [{ n: i, s: `q${i}` }]));
  });

  it("serialises read-modify-write transactions of several clients", async () => {
    await pool().query("CREATE TABLE counter (n int NOT NULL); INSERT INTO counter VALUES (0)");
    const clients = [pool(4), pool(4)];
    await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        const client = await (clients[i % 2] as pg.Pool).connect();
        try {
          await client.query("BEGIN");
          const { rows } = await client.query<{ n: number }>("SELECT n FROM counter");
          await client.query("UPDATE counter SET n = $1", [(rows[0]?.n ?? 0) + 1]);
          await client.query("COMMIT");
        } finally {
          client.release();
        }
      }),
    );
    expect((await pool().query("SELECT n FROM counter")).rows).toEqual([{ n: 60 }]);
  });

  it("rolls back what a client left open when it disconnects, and serves the others", async () => {
    const leaving = new pg.Client({ connectionString: server.url });
    leaving.on("error", () => {}); // it is about to lose its connection, on purpose
    await leaving.connect();
    await leaving.query("BEGIN");
    await leaving.query("INSERT INTO item VALUES (3, 'gone')");
    const other = pool().query("INSERT INTO item VALUES (4, 'stays')");
    // The connection drops without COMMIT, ROLLBACK or Terminate.
    (leaving as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    await other;
    expect((await pool().query("SELECT id FROM item ORDER BY id")).rows).toEqual([{ id: 4 }]);
  });

  it("refuses a start-up packet that is not protocol 3 by closing the connection", async () => {
    const { createConnection } = await import("node:net");
    const socket = createConnection(path.join(socketDir, ".s.PGSQL.5432"));
    const packet = Buffer.alloc(8);
    packet.writeInt32BE(8, 0);
    packet.writeInt32BE(0x00020000, 4); // protocol 2
    socket.write(packet);
    await new Promise<void>((resolve) => socket.once("close", () => resolve()));
    expect((await pool().query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
  });
});

describe("readyStatus", () => {
  const message = (type: string, body: number[]) => {
    const bytes = Buffer.alloc(5 + body.length);
    bytes.write(type, 0);
    bytes.writeInt32BE(4 + body.length, 1);
    Buffer.from(body).copy(bytes, 5);
    return bytes;
  };
  const ready = (status: string) => message("Z", [status.charCodeAt(0)]);

  it.each([
    ["an exchange ending idle", Buffer.concat([message("C", [0]), ready("I")]), "I"],
    ["an open transaction", Buffer.concat([message("C", [0]), ready("T")]), "T"],
    ["a failed transaction", ready("E"), "E"],
    ["no ReadyForQuery yet (Parse without Sync)", message("1", []), undefined],
    // A row value whose last bytes look like ReadyForQuery is not one.
    ["a row ending in the bytes of ReadyForQuery", message("D", [0, 1, 0, 0, 0, 6, 0x5a, 0, 0, 0, 5, 0x49]), undefined],
    ["an empty reply", Buffer.alloc(0), undefined],
  ])("reads %s", (_, reply, status) => {
    expect(readyStatus(reply)).toBe(status);
  });
});
