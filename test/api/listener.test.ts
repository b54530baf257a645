// The port itself, below any RPC: limits that keep slow or idle clients from
// holding connections, on plain HTTP/1.1 (where the front socket hands
// connections to the HTTP server).
import net from "node:net";
import { describe, expect, it } from "vitest";
import { startTestBroker } from "../support/broker.js";

function connect(url: string): Promise<net.Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Everything the server sends until it closes the connection. */
function untilClosed(socket: net.Socket): Promise<string> {
  let received = "";
  socket.on("data", (chunk) => (received += chunk));
  return new Promise((resolve) => socket.once("close", () => resolve(received)));
}

describe("the listening port", () => {
  it("answers 408 and hangs up on a client that is too slow to send its headers", async () => {
    const t = await startTestBroker("pglite", { AEGIS_HTTP_HEADERS_TIMEOUT_MS: "1000" });
    try {
      const socket = await connect(t.broker.url);
      const answer = untilClosed(socket);
      // The request line and one header, then nothing: the headers never end.
      socket.write("GET /healthz HTTP/1.1\r\nHost: aegis\r\n");
      expect(await answer).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      await t.stop();
    }
  });

  it("ends idle keep-alive connections at shutdown instead of waiting out their timeout", async () => {
    // Idle connections are kept for 10 minutes here, far beyond this test's
    // timeout: a shutdown that waited for them would fail it. No clock is read.
    const t = await startTestBroker("pglite", { AEGIS_HTTP_KEEP_ALIVE_TIMEOUT_MS: "600000" });
    const socket = await connect(t.broker.url);
    const answer = untilClosed(socket);
    socket.write("GET /healthz HTTP/1.1\r\nHost: aegis\r\nConnection: keep-alive\r\n\r\n");
    const reply = await new Promise<string>((resolve) => socket.once("data", (chunk) => resolve(String(chunk))));
    // Answered, and the connection stays open, for as long as configured (RFC 9112 §9.3; Node says so in Keep-Alive).
    expect(reply).toMatch(/^HTTP\/1\.1 200 /);
    expect(reply).toMatch(/\r\nKeep-Alive: timeout=600\r\n/i);
    await t.stop();
    expect(await answer).toMatch(/^HTTP\/1\.1 200 /);
  });
});
