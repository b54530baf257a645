// Every RPC of every generated service declares its access policy, and every
// service the API defines is served.
import { readdirSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { DescFile } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { services } from "../../src/app/modules.js";
import { grantableActions, policyProblems } from "../../src/policy/method-policy.js";

const genDir = path.resolve("gen/proto");

async function generatedFiles(): Promise<DescFile[]> {
  const files = readdirSync(genDir, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith("_pb.ts"));
  const modules = await Promise.all(files.map((f) => import(pathToFileURL(path.join(genDir, f)).href)));
  return modules.flatMap((m) =>
    Object.entries(m)
      .filter(([name]) => name.startsWith("file_"))
      .map(([, d]) => d as DescFile),
  );
}

describe("method policies", () => {
  it("are complete and consistent on every RPC of every generated service", async () => {
    const files = await generatedFiles();
    const methods = files.flatMap((file) => file.services.flatMap((service) => service.methods));
    expect(methods.length).toBeGreaterThan(5);
    const problems = methods.flatMap((m) => policyProblems(m).map((p) => `${m.parent.typeName}/${m.name}: ${p}`));
    expect(problems).toEqual([]);
  });

  it("covers every service the API defines with a route", async () => {
    const defined = (await generatedFiles()).flatMap((f) => f.services.map((s) => s.typeName)).sort();
    expect(services.map((s) => s.typeName).sort()).toEqual(defined);
  });

  it("lists the grantable actions without the anonymous and self-service ones", () => {
    const actions = grantableActions(services);
    expect(actions).toContain("tenant.create");
    expect(actions).not.toContain("health.check");
    expect(actions).not.toContain("principal.whoami");
  });
});
