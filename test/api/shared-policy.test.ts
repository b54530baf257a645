// The OAuth endpoints are the HTTP faces of RPCs and share their policy
// through the same pipeline step (SharedPolicyRoute): the same caller is
// let in or refused on both doors, for the same reason, audited with the
// same action and target. Tier: real broker over real HTTP.
import { Code, type ConnectError, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenService } from "../../gen/proto/aegis/token/v1/token_pb.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { failure, reasonOf } from "../support/errors.js";
import { type Actor, createActor } from "../support/fixtures.js";

describe.each(databaseKinds)("HTTP routes that share an RPC's policy on %s", (kind) => {
  let t: TestBroker;
  let agent: Actor;
  let introspector: Actor;
  beforeAll(async () => {
    t = await startTestBroker(kind);
    agent = await createActor(t, { kind: "agent", scopes: ["reports.read"] });
    introspector = await createActor(t, { tenantId: agent.tenantId, kind: "service", scopes: ["introspect.token"] });
  });
  afterAll(() => t.stop());

  const post = (path: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
    fetch(`${t.broker.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
      body: new URLSearchParams(body),
    });
  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;

  /** The audit events of one request (HTTP response header, or RPC error metadata). */
  const audited = (requestId: string | null | undefined) =>
    t.db.database.prisma.auditEvent.findMany({
      where: { requestId: requestId ?? "none" },
      select: { action: true, target: true, outcome: true, reason: true, actorId: true, tenantId: true },
    });
  const rpcRequestId = (error: ConnectError | undefined) => error?.metadata.get("aegis-request-id");
  const anonymous = () => createClient(TokenService, t.transport("connect", undefined));
  /** The one audit event of each door, the same on both. */
  const auditedAlike = async (res: Response, rpc: ConnectError | undefined) => {
    const [http, rpcEvent, ...more] = [
      ...(await audited(res.headers.get("aegis-request-id"))),
      ...(await audited(rpcRequestId(rpc))),
    ];
    expect(more).toEqual([]);
    expect(http).toEqual(rpcEvent);
    expect(http?.reason.startsWith(reasonOf(rpc) ?? "?")).toBe(true);
    return http;
  };

  it("refuses a caller without introspect.token on /oauth/introspect as on IntrospectToken, audited alike", async () => {
    const http = await post(
      "/oauth/introspect",
      { token: "x" },
      { authorization: basic(agent.principalId, agent.key) },
    );
    const rpc = await failure(t.client(TokenService, { key: agent.key }).introspectToken({ token: "x" }));

    expect(http.status).toBe(403);
    expect(((await http.json()) as { error: string }).error).toBe("access_denied");
    expect(rpc?.code).toBe(Code.PermissionDenied);
    expect(await auditedAlike(http, rpc)).toEqual({
      action: "introspect.token",
      target: "",
      outcome: "denied",
      reason: expect.stringMatching(/^MISSING_GRANT/),
      actorId: agent.principalId,
      tenantId: agent.tenantId,
    });
  });

  it("lets the holder of introspect.token in on both doors", async () => {
    const http = await post(
      "/oauth/introspect",
      { token: "not-a-token" },
      { authorization: basic(introspector.principalId, introspector.key) },
    );
    expect(http.status).toBe(200);
    expect(await http.json()).toEqual({ active: false });
    const rpc = await t.client(TokenService, { key: introspector.key }).introspectToken({ token: "not-a-token" });
    expect(rpc.active).toBe(false);
  });

  it("refuses an anonymous introspection with a challenge, audited as on the RPC", async () => {
    const http = await post("/oauth/introspect", { token: "x" });
    const rpc = await failure(anonymous().introspectToken({ token: "x" }));

    expect(http.status).toBe(401);
    expect(http.headers.get("www-authenticate")).toMatch(/^Basic /);
    expect(rpc?.code).toBe(Code.Unauthenticated);
    expect(await auditedAlike(http, rpc)).toMatchObject({ action: "introspect.token", target: "", outcome: "denied" });
  });

  it("refuses an anonymous client_credentials grant: MintToken's policy demands client authentication", async () => {
    const http = await post("/oauth/token", { grant_type: "client_credentials", audience: "https://api.example.com" });
    const rpc = await failure(anonymous().mintToken({ audience: "https://api.example.com", scopes: [] }));

    expect(http.status).toBe(401);
    expect(((await http.json()) as { error: string }).error).toBe("invalid_client");
    expect(rpc?.code).toBe(Code.Unauthenticated);
    expect(await auditedAlike(http, rpc)).toMatchObject({
      action: "token.mint",
      target: "https://api.example.com",
      outcome: "denied",
      actorId: null,
    });
  });

  it("refuses a broker token as a client credential on /oauth/token as on MintToken", async () => {
    const minted = await t.client(TokenService, { key: agent.key }).mintToken({ audience: t.broker.url, scopes: [] });
    const http = await post(
      "/oauth/token",
      { grant_type: "client_credentials", audience: "a" },
      { authorization: basic(agent.principalId, minted.accessToken) },
    );
    const rpc = await failure(t.client(TokenService, { key: minted.accessToken }).mintToken({ audience: "a" }));

    expect(http.status).toBe(401);
    expect(rpc?.code).toBe(Code.Unauthenticated);
    expect(await auditedAlike(http, rpc)).toMatchObject({ action: "token.mint", target: "a", outcome: "denied" });
  });

  it("applies MintToken's request rules only after authentication, as the RPC pipeline does", async () => {
    const badAudience = { grant_type: "client_credentials", audience: "has white space" };
    // A stranger learns nothing about the request's fields ...
    expect((await post("/oauth/token", badAudience)).status).toBe(401);
    // ... an authenticated client hears which rule its request broke.
    const http = await post("/oauth/token", badAudience, { authorization: basic(agent.principalId, agent.key) });
    expect(http.status).toBe(400);
    expect(((await http.json()) as { error: string }).error).toBe("invalid_request");
  });

  it("names the RPC each request stood for in its log line, per grant type at /oauth/token", async () => {
    const minted = await post(
      "/oauth/token",
      { grant_type: "client_credentials", audience: "a" },
      { authorization: basic(agent.principalId, agent.key) },
    );
    const exchanged = await post("/oauth/token", {
      grant_type: "urn:ietf:params:oauth:grant-type:device_code",
      client_id: "nobody",
      device_code: "x",
    });
    const procedureOf = (res: Response) =>
      t.logs
        .map((line) => JSON.parse(line) as { requestId?: string; procedure?: string })
        .find((line) => line.requestId === res.headers.get("aegis-request-id"))?.procedure;
    expect(procedureOf(minted)).toBe("aegis.token.v1.TokenService/MintToken");
    expect(procedureOf(exchanged)).toBe("aegis.device.v1.DeviceAuthService/ExchangeDeviceCode");
  });
});
