// What stock OAuth clients (openid-client, oauth4webapi) rely on, driven by
// those clients where they have a call for it: WWW-Authenticate challenges on
// every 401 (RFC 6750 §3, RFC 9449 §7.1 and §9), the token endpoint's own
// challenge (RFC 6749 §5.2), revocation by a public client (RFC 7009 §2.1),
// and metadata for an issuer with a path (RFC 8414 §3.1).
import * as oauth from "oauth4webapi";
import * as client from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceAuthService } from "../../gen/proto/aegis/device/v1/device_pb.js";
import { startTestBroker, type TestBroker } from "../support/broker.js";
import { databaseKinds } from "../support/databases.js";
import { type Actor, createActor } from "../support/fixtures.js";

const insecure = { [oauth.allowInsecureRequests]: true } as const;
const whoAmI = "/aegis.principal.v1.PrincipalService/WhoAmI";

/**
 * The challenges of a response's WWW-Authenticate header as oauth4webapi
 * parses them: it checks for challenges first in every response processor
 * (here the UserInfo one, which needs nothing else of the response).
 */
async function challenges(response: Response) {
  const as = { issuer: "https://unused.example" };
  try {
    await oauth.processUserInfoResponse(as, { client_id: "x" }, oauth.skipSubjectCheck, response.clone());
  } catch (error) {
    if (error instanceof oauth.WWWAuthenticateChallengeError) {
      return error.cause.map((c) => ({ scheme: c.scheme, ...c.parameters }) as Record<string, string | undefined>);
    }
  }
  return [];
}

describe.each(databaseKinds)("OAuth standards on %s", (kind) => {
  let t: TestBroker;
  let agent: Actor;
  let metadataAlgs: string;
  beforeAll(async () => {
    t = await startTestBroker(kind, { AEGIS_DPOP_NONCE: "true" });
    agent = await createActor(t, { kind: "agent", scopes: ["agent.read"] });
    const metadata = (await (await fetch(`${t.broker.url}/.well-known/oauth-authorization-server`)).json()) as {
      dpop_signing_alg_values_supported: string[];
    };
    metadataAlgs = metadata.dpop_signing_alg_values_supported.join(" ");
  });
  afterAll(() => t.stop());

  const rpc = (authorization?: string) =>
    fetch(`${t.broker.url}${whoAmI}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
      body: "{}",
    });
  const form = (path: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
    fetch(`${t.broker.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
      body: new URLSearchParams(body),
    });

  it.each([
    [
      "no credential",
      undefined,
      [
        ["bearer", "invalid_request"],
        ["dpop", "invalid_request"],
      ],
    ],
    ["a bad Bearer token", "Bearer eyJhbGciOiJFUzI1NiJ9.e30.AAAA", [["bearer", "invalid_token"]]],
    ["a bad DPoP token", "DPoP eyJhbGciOiJFUzI1NiJ9.e30.AAAA", [["dpop", "invalid_token"]]],
  ] as const)("answers an RPC call with %s with a challenge", async (_, authorization, expected) => {
    const response = await rpc(authorization);
    expect(response.status).toBe(401);
    const got = await challenges(response);
    expect(got.map((c) => [c.scheme, c.error])).toEqual(expected);
    for (const c of got) {
      expect(c.error_description).toBeTruthy();
      if (c.scheme === "dpop") expect(c.algs).toBe(metadataAlgs);
      if (c.scheme === "bearer") expect(c.realm).toBe("aegis");
    }
  });

  it("challenges at the token endpoint with the scheme the client used", async () => {
    const basic = `Basic ${Buffer.from(`${agent.principalId}:aegis_ak_wrong`).toString("base64")}`;
    const viaBasic = await form("/oauth/token", { grant_type: "client_credentials" }, { authorization: basic });
    expect(viaBasic.status).toBe(401);
    expect(await challenges(viaBasic)).toEqual([expect.objectContaining({ scheme: "basic", realm: "aegis" })]);
    const viaPost = await form("/oauth/token", {
      grant_type: "client_credentials",
      client_id: agent.principalId,
      client_secret: "aegis_ak_wrong",
    });
    expect(viaPost.status).toBe(401);
    expect((await challenges(viaPost))[0]?.scheme).toBe("basic");
    const viaBearer = await form(
      "/oauth/token",
      { grant_type: "client_credentials" },
      { authorization: "Bearer nope" },
    );
    expect((await challenges(viaBearer)).map((c) => c.scheme)).toEqual(["bearer"]);
    // Any algs listed anywhere equal the metadata's list.
    for (const response of [viaBasic, viaPost, viaBearer]) {
      for (const c of await challenges(response)) if (c.algs !== undefined) expect(c.algs).toBe(metadataAlgs);
    }
  });

  it("answers a token request without grant_type with invalid_request", async () => {
    const response = await form("/oauth/token", { client_id: agent.principalId, client_secret: agent.key });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toBe("invalid_request");
  });

  it("lets openid-client recover on its own from use_dpop_nonce at the token endpoint and at the API", async () => {
    const config = await client.discovery(
      new URL(t.broker.url),
      agent.principalId,
      undefined,
      client.ClientSecretPost(agent.key),
      { execute: [client.allowInsecureRequests], algorithm: "oauth2" },
    );
    const keyPair = await client.randomDPoPKeyPair("ES256");
    const DPoP = client.getDPoPHandle(config, keyPair);
    const tokens = await client.clientCredentialsGrant(
      config,
      { scope: "agent.read", resource: t.broker.url },
      { DPoP },
    );
    expect(tokens.token_type).toBe("dpop");
    // The broker's API demands a nonce: with a handle that knows none yet, the
    // first call is refused with `DPoP error="use_dpop_nonce"` and a DPoP-Nonce
    // header, and the client retries with it.
    const fresh = client.getDPoPHandle(config, keyPair);
    const nonceRefusals = () =>
      t.logs.filter((line) => line.includes("USE_DPOP_NONCE") && line.includes("WhoAmI")).length;
    const refusalsBefore = nonceRefusals();
    const response = await client.fetchProtectedResource(
      config,
      tokens.access_token,
      new URL(`${t.broker.url}${whoAmI}`),
      "POST",
      "{}",
      new Headers({ "content-type": "application/json" }),
      { DPoP: fresh },
    );
    expect(response.status).toBe(200);
    expect(nonceRefusals()).toBe(refusalsBefore + 1);
    expect(((await response.json()) as { principal: { id: string } }).principal.id).toBe(agent.principalId);
  });

  it("lets a public client revoke its own access token with its client_id alone (RFC 7009 §2.1)", async () => {
    // A device login for the aegis CLI (a public client of the operators' tenant).
    const begun = (await (
      await form("/oauth/device_authorization", { client_id: "aegis-cli", scope: "agent.read" })
    ).json()) as { device_code: string; user_code: string };
    await t.client(DeviceAuthService).approveDeviceAuthorization({ userCode: begun.user_code });
    const exchanged = (await (
      await form("/oauth/token", {
        grant_type: "urn:ietf:params:oauth:grant-type:device_code",
        client_id: "aegis-cli",
        device_code: begun.device_code,
      })
    ).json()) as { access_token: string };
    expect((await rpc(`Bearer ${exchanged.access_token}`)).status).toBe(200);

    const as = await oauth.processDiscoveryResponse(
      new URL(t.broker.url),
      await oauth.discoveryRequest(new URL(t.broker.url), { algorithm: "oauth2", ...insecure }),
    );
    // Another client cannot revoke it by naming itself.
    const stranger = await oauth.revocationRequest(
      as,
      { client_id: agent.principalId },
      oauth.None(),
      exchanged.access_token,
      insecure,
    );
    expect(stranger.status).toBe(401);
    expect((await rpc(`Bearer ${exchanged.access_token}`)).status).toBe(200);

    await oauth.processRevocationResponse(
      await oauth.revocationRequest(as, { client_id: "aegis-cli" }, oauth.None(), exchanged.access_token, insecure),
    );
    expect((await rpc(`Bearer ${exchanged.access_token}`)).status).toBe(401);
  });

  it("serves the metadata of an issuer with a path at the RFC 8414 §3.1 location", async () => {
    const pathed = await startTestBroker(kind, { AEGIS_PUBLIC_URL: "https://aegis.example.test/tenant-a" }, undefined);
    try {
      const issuer = new URL("https://aegis.example.test/tenant-a");
      // Discovery asks the example host; route its requests to the broker under test.
      const customFetch: typeof fetch = (url, init) =>
        fetch(String(url).replace("https://aegis.example.test", pathed.broker.url), init);
      const response = await oauth.discoveryRequest(issuer, { algorithm: "oauth2", [oauth.customFetch]: customFetch });
      expect(new URL(response.url).pathname).toBe("/.well-known/oauth-authorization-server/tenant-a");
      const as = await oauth.processDiscoveryResponse(issuer, response);
      expect(as.issuer).toBe("https://aegis.example.test/tenant-a");
      expect(as.token_endpoint).toBe("https://aegis.example.test/tenant-a/oauth/token");
    } finally {
      await pathed.stop();
    }
  });
});
