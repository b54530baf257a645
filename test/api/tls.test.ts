// With a certificate configured, one TLS port serves HTTP/2 (gRPC) and
// HTTP/1.1 (Connect, gRPC-Web, plain HTTP) chosen by ALPN.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import tls from "node:tls";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/proto/grpc/health/v1/health_pb.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";

describe("TLS listener", () => {
  let t: TestBroker;
  let ca: Buffer;
  beforeAll(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "aegis-tls-"));
    const certFile = path.join(dir, "cert.pem");
    const keyFile = path.join(dir, "key.pem");
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "-keyout",
        keyFile,
        "-out",
        certFile,
      ],
      { stdio: "ignore" },
    );
    ca = readFileSync(certFile);
    t = await startTestBroker("pglite", {
      AEGIS_TLS_CERT_FILE: certFile,
      AEGIS_TLS_KEY_FILE: keyFile,
      AEGIS_HTTP_HEADERS_TIMEOUT_MS: "1000",
    });
  });
  afterAll(() => t?.stop());

  it("serves gRPC over h2 and Connect and gRPC-Web over HTTP/1.1 on the same port", async () => {
    expect(t.broker.url).toMatch(/^https:/);
    const baseUrl = t.broker.url;
    const transports = [
      createGrpcTransport({ baseUrl, nodeOptions: { ca } }),
      createConnectTransport({ baseUrl, httpVersion: "1.1", nodeOptions: { ca } }),
      createGrpcWebTransport({ baseUrl, httpVersion: "2", nodeOptions: { ca } }),
    ];
    for (const transport of transports) {
      expect((await createClient(Health, transport).check({})).status).toBe(Status.SERVING);
    }
  });

  it("negotiates http/1.1 for a plain HTTPS client", async () => {
    const body = await new Promise<string>((resolve, reject) => {
      https
        .get(`${t.broker.url}/healthz`, { ca }, (res) => {
          let data = "";
          res.on("data", (d) => (data += d));
          res.on("end", () => resolve(`${res.httpVersion} ${data}`));
        })
        .on("error", reject);
    });
    expect(body).toBe('1.1 {"status":"ok"}');
  });

  it("marks the verification page's cookies Secure on TLS", async () => {
    const cookie = await new Promise<string>((resolve, reject) => {
      https
        .get(`${t.broker.url}/device`, { ca }, (res) => {
          res.resume();
          resolve(String(res.headers["set-cookie"]));
        })
        .on("error", reject);
    });
    expect(cookie).toMatch(/^aegis_login=\w+;/);
    // Attribute order means nothing to a browser (RFC 6265 §5.2); the set does.
    const attributes = cookie
      .split(";")
      .slice(1)
      .map((a) => a.trim())
      .sort();
    expect(attributes).toEqual(["HttpOnly", "Max-Age=600", "Path=/device", "SameSite=Lax", "Secure"]);
  });

  it("answers 408 and hangs up on an HTTP/1.1 client too slow to send its headers", async () => {
    const { hostname, port } = new URL(t.broker.url);
    const socket = tls.connect({ host: hostname, port: Number(port), ca, ALPNProtocols: ["http/1.1"] });
    let received = "";
    socket.on("data", (chunk) => (received += chunk));
    await new Promise((resolve) => socket.once("secureConnect", resolve));
    // The request line and one header, then nothing: the headers never end.
    socket.write("GET /healthz HTTP/1.1\r\nHost: localhost\r\n");
    await new Promise((resolve) => socket.once("close", resolve));
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
  });
});
