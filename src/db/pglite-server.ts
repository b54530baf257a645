// Serves the embedded PGlite database to the broker's worker processes over
// the PostgreSQL wire protocol, on a Unix socket in a directory only the
// broker's user can enter. Workers connect with the ordinary PostgreSQL
// driver, exactly as several broker instances share a real PostgreSQL.
//
// PGlite is one database session. Many clients can share it safely only if
// each exchange runs whole: a client takes the session when it sends
// something and keeps it until PGlite answers ReadyForQuery with status idle
// ('I'). An explicit transaction ('T', or 'E' once failed) and an extended-
// protocol exchange not yet ended by Sync therefore keep it too, and no other
// client's statement can run inside them. (pglite-socket's multiplexer hands
// the session over between single messages outside explicit transactions, so
// one client's Parse could be followed by another's Bind: not safe here.)
// A client that disconnects while holding the session has its open
// transaction rolled back before the next client gets it.
import { chmodSync, mkdirSync, rmSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import type { PGlite } from "@electric-sql/pglite";
import type { Logger } from "pino";

export interface PgliteServer {
  /** Connection URL for the PostgreSQL driver (the socket directory as `host`). */
  readonly url: string;
  /** Stops accepting clients, ends the connected ones, and waits for the session to be free. */
  close(): Promise<void>;
}

/** The name PostgreSQL clients look for in a socket directory (port 5432), so psql can connect too. */
const socketName = ".s.PGSQL.5432";

const sslRequest = 80_877_103;
const gssEncRequest = 80_877_104;
const protocol3 = 196_608;
/** Larger frontend messages are refused (the broker's own are far smaller). */
const maxMessageBytes = 64 * 1024 * 1024;

export async function servePglite(lite: PGlite, socketDir: string, log: Logger): Promise<PgliteServer> {
  await lite.waitReady;
  mkdirSync(socketDir, { recursive: true, mode: 0o700 });
  chmodSync(socketDir, 0o700);
  const socketPath = path.join(socketDir, socketName);
  rmSync(socketPath, { force: true }); // left behind by a broker that was killed
  const sessions = new Set<Session>();
  const server = net.createServer((socket) => {
    const session = new Session(socket, lite, log);
    sessions.add(session);
    socket.once("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => {
      server.off("error", reject);
      resolve();
    });
  });
  chmodSync(socketPath, 0o600);
  return {
    url: `postgres://aegis@localhost/postgres?host=${encodeURIComponent(socketDir)}`,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all([...sessions].map((session) => session.end()));
      await closed;
    },
  };
}

/** One client connection: frames its messages and runs them on the shared session in whole exchanges. */
class Session {
  #pending: Buffer = Buffer.alloc(0);
  #started = false;
  #closing = false;
  #running: Promise<void> | undefined;
  /** Set while this client holds PGlite: calling it hands PGlite back. */
  #release: (() => void) | undefined;
  #ended: Promise<void> | undefined;

  constructor(
    private readonly socket: net.Socket,
    private readonly lite: PGlite,
    private readonly log: Logger,
  ) {
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => {
      this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
      this.#running ??= this.#run().finally(() => {
        this.#running = undefined;
      });
    });
    socket.on("error", () => socket.destroy());
    socket.once("close", () => void this.end());
  }

  /** Ends the connection; an exchange it left open is closed and PGlite handed back. */
  end(): Promise<void> {
    this.#ended ??= (async () => {
      this.#closing = true;
      this.socket.destroy();
      await this.#running;
      if (!this.#release) return;
      try {
        // Finish an extended-protocol exchange left without Sync, then roll back what is still open.
        let status = readyStatus(await this.lite.execProtocolRaw(syncMessage));
        if (status !== "I") status = readyStatus(await this.lite.execProtocolRaw(queryMessage("ROLLBACK")));
        if (status !== "I") this.log.error({ status }, "embedded database session not idle after a client left");
      } catch (error) {
        this.log.error({ err: error }, "embedded database cleanup after a client left failed");
      } finally {
        this.#handBack();
      }
    })();
    return this.#ended;
  }

  async #run(): Promise<void> {
    try {
      for (let work = this.#take(); work && !this.#closing; work = this.#take()) {
        if (work.kind === "close") {
          this.socket.destroy(); // Terminate, or a packet this server does not speak
          return;
        }
        if (work.kind === "reply") {
          this.socket.write(work.bytes);
          continue;
        }
        await this.#acquire();
        if (this.#closing) break; // left while waiting its turn: run nothing more
        const reply = await this.lite.execProtocolRaw(work.bytes);
        this.socket.write(Buffer.from(reply));
        if (readyStatus(reply) === "I") this.#handBack();
      }
    } catch (error) {
      this.log.error({ err: error }, "embedded database connection failed");
      this.socket.destroy(); // the client learns at once, rather than waiting for a reply
    }
  }

  /** The next thing to do with what has arrived: messages to run, a reply of our own, or the end. */
  #take(): { kind: "run"; bytes: Uint8Array } | { kind: "reply"; bytes: Buffer } | { kind: "close" } | undefined {
    const buffer = this.#pending;
    if (!this.#started) {
      // Untyped start-up packets: Int32 length, Int32 code.
      if (buffer.length < 8) return undefined;
      const length = buffer.readInt32BE(0);
      const code = buffer.readInt32BE(4);
      if (code === sslRequest || code === gssEncRequest) {
        this.#pending = buffer.subarray(8);
        return { kind: "reply", bytes: Buffer.from("N") }; // no TLS on a local socket
      }
      // A CancelRequest, or any protocol but 3: nothing to do for it here.
      if (code !== protocol3 || length < 8 || length > 10_000) return { kind: "close" };
      if (buffer.length < length) return undefined;
      this.#pending = buffer.subarray(length);
      this.#started = true;
      return { kind: "run", bytes: buffer.subarray(0, length) };
    }
    // Typed messages: Byte1 type, Int32 length (which counts itself). Run every complete one at once.
    let end = 0;
    while (buffer.length - end >= 5) {
      const length = buffer.readInt32BE(end + 1);
      if (length < 4 || length > maxMessageBytes) return { kind: "close" };
      if (buffer[end] === terminate) {
        if (end === 0) return { kind: "close" };
        break; // run what came before it first
      }
      if (buffer.length - end < 1 + length) break;
      end += 1 + length;
    }
    if (end === 0) return undefined;
    this.#pending = buffer.subarray(end);
    return { kind: "run", bytes: buffer.subarray(0, end) };
  }

  async #acquire(): Promise<void> {
    if (this.#release) return;
    await new Promise<void>((taken) => {
      void this.lite.runExclusive(
        () =>
          new Promise<void>((handBack) => {
            this.#release = handBack;
            taken();
          }),
      );
    });
  }

  #handBack(): void {
    const release = this.#release;
    this.#release = undefined;
    release?.();
  }
}

const terminate = 0x58; // 'X'
const readyForQuery = 0x5a; // 'Z'
const syncMessage = Uint8Array.from([0x53, 0, 0, 0, 4]);

function queryMessage(sql: string): Uint8Array {
  const text = Buffer.from(`${sql}\0`);
  const message = Buffer.alloc(5 + text.length);
  message.write("Q", 0);
  message.writeInt32BE(4 + text.length, 1);
  text.copy(message, 5);
  return message;
}

/**
 * The transaction status in a backend reply's last message when that is
 * ReadyForQuery; undefined when the reply does not end an exchange. The
 * messages are walked from the start: a value in a row could end with bytes
 * that look like ReadyForQuery.
 */
export function readyStatus(reply: Uint8Array): "I" | "T" | "E" | undefined {
  const view = new DataView(reply.buffer, reply.byteOffset, reply.byteLength);
  let last = -1;
  for (let at = 0; at + 5 <= reply.length; ) {
    const length = view.getInt32(at + 1);
    if (length < 4) return undefined;
    last = at;
    at += 1 + length;
  }
  if (last < 0 || reply[last] !== readyForQuery || view.getInt32(last + 1) !== 5 || last + 6 !== reply.length) {
    return undefined;
  }
  const status = String.fromCharCode(reply[last + 5] as number);
  return status === "I" || status === "T" || status === "E" ? status : undefined;
}
