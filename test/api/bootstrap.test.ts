import { afterAll, describe, expect, it } from "vitest";
import { PrincipalService } from "../../gen/proto/aegis/principal/v1/principal_pb.js";
import { startTestBroker } from "../support/broker.js";
import { createTestDatabase, databaseKinds } from "../support/databases.js";

describe.each(databaseKinds)("bootstrap on %s", (kind) => {
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
  });

  it("creates the first admin once: a later start on the same database does not", async () => {
    const db = await createTestDatabase(kind);
    stops.push(() => db.drop());
    const rootKey = Buffer.alloc(32, 7).toString("base64url");
    const first = await startTestBroker(kind, { AEGIS_ROOT_KEY: rootKey }, db);
    expect(first.adminKey).toMatch(/^aegis_ak_/);
    const me = await first.client(PrincipalService).whoAmI({});
    await first.stop();

    const second = await startTestBroker(kind, { AEGIS_ROOT_KEY: rootKey }, db);
    stops.push(() => second.stop());
    expect(second.broker.bootstrap).toBeUndefined();
    // The key from the first start still works on the second.
    const again = await second.client(PrincipalService, { key: first.adminKey }).whoAmI({});
    expect(again.principal?.id).toBe(me.principal?.id);
    expect(await db.database.prisma.tenant.count()).toBe(1);
    // The default public client for `aegis login`, without the elevated grant.
    const cli = await db.database.prisma.oAuthClient.findUniqueOrThrow({ where: { id: "aegis-cli" } });
    expect(cli.allowedScopes).toContain("credential.lease.create:provider:*:app:*:account:*");
    expect(cli.allowedScopes.split(" ")).not.toContain("broker.admin");
  });

  it("bootstraps exactly once when brokers start on one database at the same moment", async () => {
    const db = await createTestDatabase(kind);
    stops.push(() => db.drop());
    const rootKey = Buffer.alloc(32, 9).toString("base64url");
    const brokers = await Promise.all([1, 2, 3].map(() => startTestBroker(kind, { AEGIS_ROOT_KEY: rootKey }, db)));
    for (const b of brokers) stops.push(() => b.stop());
    expect(brokers.filter((b) => b.broker.bootstrap).length).toBe(1);
    expect(await db.database.prisma.principal.count()).toBe(1);
  });
});
