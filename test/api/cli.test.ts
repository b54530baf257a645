// The `aegis` command as an operator runs it: real processes, real signals.
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { AuditService } from "../../gen/proto/aegis/audit/v1/audit_pb.js";
import { TenantService } from "../../gen/proto/aegis/tenant/v1/tenant_pb.js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/proto/grpc/health/v1/health_pb.js";
import { runAegis as run, waitFor } from "../support/cli.js";

describe("aegis CLI", () => {
  it("serves on the embedded default, writes the one-time credential 0600, and shuts down cleanly on SIGTERM", async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "aegis-cli-"));
    const credentialFile = path.join(dataDir, "admin.key");
    const broker = run(["serve"], {
      AEGIS_DATA_DIR: dataDir,
      AEGIS_PORT: "0",
      AEGIS_BOOTSTRAP_CREDENTIAL_FILE: credentialFile,
    });
    await waitFor(() => broker.output().includes("aegis broker listening"));
    const baseUrl = /"url":"(http:\/\/[^"]+)"/.exec(broker.output())?.[1];
    expect(baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(statSync(credentialFile).mode & 0o777).toBe(0o600);
    const key = readFileSync(credentialFile, "utf8").trim();
    expect(broker.output()).not.toContain(key);

    const transport = createGrpcTransport({
      baseUrl: baseUrl ?? "",
      interceptors: [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${key}`);
          return next(req);
        },
      ],
    });
    expect((await createClient(Health, transport).check({})).status).toBe(Status.SERVING);

    // A live stream is ended by shutdown rather than cut off. It is open on
    // the broker once it has answered: an event written before it, replayed.
    await createClient(TenantService, transport).createTenant({ name: "before-the-tail" });
    const audit = createClient(AuditService, transport);
    const { events } = await audit.queryAuditEvents({ filter: { action: "tenant.create" } });
    const tail = audit.tailAuditEvents({ afterSeq: (events[0]?.seq ?? 1n) - 1n })[Symbol.asyncIterator]();
    expect((await tail.next()).done).toBe(false);
    const tailEnded = (async () => {
      while (!(await tail.next()).done) {
        /* no further events expected */
      }
      return "ended";
    })();
    broker.child.kill("SIGTERM");
    expect(await broker.exit).toBe(0);
    expect(await tailEnded).toBe("ended");
    expect(broker.output()).toContain("shut down");
  });

  it.each([
    [{ AEGIS_PORT: "http" }, "AEGIS_PORT: must be a whole number"],
    [{ AEGIS_DATABASE_URL: "postgres://127.0.0.1:1/none" }, "AEGIS_PUBLIC_URL: required with AEGIS_DATABASE_URL"],
    [
      { AEGIS_DATABASE_URL: "postgres://127.0.0.1:1/none", AEGIS_PUBLIC_URL: "https://aegis.test", AEGIS_PORT: "0" },
      "AEGIS_ROOT_KEY: required with AEGIS_DATABASE_URL",
    ],
    [
      {
        AEGIS_WORKERS: "2",
        AEGIS_DATABASE_URL: "postgres://127.0.0.1:1/none",
        AEGIS_PUBLIC_URL: "https://aegis.test",
        AEGIS_PORT: "0",
      },
      "AEGIS_ROOT_KEY: required with AEGIS_DATABASE_URL",
    ],
    [{ AEGIS_WORKERS: "none" }, "AEGIS_WORKERS: must be a whole number or auto"],
  ])("stops with exit code 2 naming the variable for %o", async (env, message) => {
    const cli = run(["serve"], { AEGIS_DATA_DIR: mkdtempSync(path.join(tmpdir(), "aegis-cli-")), ...env });
    expect(await cli.exit).toBe(2);
    expect(cli.output()).toContain(`aegis: configuration error: ${message}`);
  });

  it("migrates an embedded database and generates root keys", async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "aegis-cli-"));
    const migrate = run(["migrate"], {
      AEGIS_DATA_DIR: dataDir,
      AEGIS_ROOT_KEY: Buffer.alloc(32).toString("base64url"),
    });
    expect(await migrate.exit).toBe(0);
    expect(migrate.output()).toContain("migrations applied");
    const keygen = run(["root-key", "generate"], {});
    expect(await keygen.exit).toBe(0);
    expect(keygen.output().trim()).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});
