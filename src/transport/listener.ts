// One port for every client: Connect, gRPC and gRPC-Web, over HTTP/1.1 and
// HTTP/2.
//
// - TLS: Node's HTTP/2 server with `allowHTTP1`, ALPN picks h2 or http/1.1.
// - Plain: HTTP/2 without TLS (h2c) is only ever "prior knowledge" – the
//   client opens with the fixed HTTP/2 preface. The first bytes of each
//   connection decide: the preface goes to the HTTP/2 server, anything else to
//   the HTTP/1.1 server. Nothing is proxied; the socket is handed over.
import { readFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { NodeHandler } from "../core/http.js";

const h2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export interface Listener {
  /** Sets what serves requests; until then every request gets 503. */
  serve(handler: NodeHandler): void;
  listen(port: number, host: string): Promise<number>;
  /** Stops accepting, lets open requests finish for up to `graceMs`, then cuts what is left. */
  close(graceMs: number): Promise<void>;
}

export function createListener(
  tls: { certFile: string; keyFile: string } | undefined,
  limits: { headersTimeoutMs: number; keepAliveTimeoutMs: number },
): Listener {
  const sessions = new Set<http2.ServerHttp2Session>();
  let current: NodeHandler | undefined;
  const handler: NodeHandler = (req, res) => {
    if (current) return current(req, res);
    res.writeHead(503, { "retry-after": "1" });
    res.end();
  };
  // Slowloris and idle-connection limits for HTTP/1.1, on whichever server
  // speaks it: the plain one below, or the TLS server (allowHTTP1).
  const http1Limits = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: 0, // streams (audit tail) may run long; RPC deadlines bound unary calls
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: 1_000,
  };
  const h1 = http.createServer(http1Limits, handler as http.RequestListener);
  // Sockets reach this server from the front one below; it never listens
  // itself. Node starts an HTTP server's connection tracking (which enforces
  // headersTimeout and lets closeIdleConnections work) on "listening" only:
  // without this, a client sending its headers slowly was never cut off, and
  // shutdown waited for idle keep-alive connections to time out.
  if (!tls) h1.emit("listening");

  const h2 = tls
    ? http2.createSecureServer({
        cert: readFileSync(tls.certFile),
        key: readFileSync(tls.keyFile),
        allowHTTP1: true,
      })
    : http2.createServer();
  // The TLS server reads its HTTP/1.1 limits as properties; the checking
  // interval only when it starts listening, which is later.
  if (tls) Object.assign(h2, http1Limits);
  h2.on("request", handler);
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });

  const front: net.Server = tls
    ? (h2 as unknown as net.Server)
    : net.createServer((socket) => dispatch(socket, h1, h2));

  return {
    serve(next) {
      current = next;
    },
    listen(port, host) {
      return new Promise((resolve, reject) => {
        front.once("error", reject);
        front.listen(port, host, () => {
          front.off("error", reject);
          resolve((front.address() as net.AddressInfo).port);
        });
      });
    },
    async close(graceMs) {
      const closed = new Promise<void>((resolve) => front.close(() => resolve()));
      for (const session of sessions) session.close(); // GOAWAY: finish open streams, take no new ones
      h1.close();
      h1.closeIdleConnections();
      const timer = setTimeout(() => {
        for (const session of sessions) session.destroy();
        h1.closeAllConnections();
        if (tls) (h2 as http2.Http2SecureServer & { closeAllConnections?: () => void }).closeAllConnections?.();
      }, graceMs);
      await closed;
      clearTimeout(timer);
    },
  };
}

function dispatch(socket: net.Socket, h1: http.Server, h2: http2.Http2Server): void {
  let seen = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, h2Preface.length);
    const isH2 = seen.subarray(0, n).equals(h2Preface.subarray(0, n));
    if (isH2 && seen.length < h2Preface.length) return; // could still be either: wait for more
    socket.off("data", onData);
    socket.off("timeout", onIdle);
    socket.setTimeout(0);
    socket.pause();
    socket.unshift(seen);
    if (isH2) {
      // The HTTP/2 session drains what was unshifted and then reads the
      // native handle itself; resuming the JS stream here would steal its data.
      h2.emit("connection", socket);
    } else {
      h1.emit("connection", socket);
      socket.resume();
    }
  };
  // A client that connects and sends nothing is dropped.
  const onIdle = () => socket.destroy();
  socket.on("data", onData);
  socket.on("error", () => socket.destroy());
  socket.on("timeout", onIdle);
  socket.setTimeout(20_000);
}
