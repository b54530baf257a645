// The request rules declared in proto, read through the generated
// descriptors and run by the broker's validator: what every RPC must
// declare, and what the shared text rules (aegis/options/v1/text.proto)
// accept and refuse.
import { create, getOption, hasOption } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { RegisterAgentRequestSchema } from "../../gen/proto/aegis/agent/v1/agent_pb.js";
import { CreateTenantRequestSchema } from "../../gen/proto/aegis/tenant/v1/tenant_pb.js";
import { MintTokenRequestSchema } from "../../gen/proto/aegis/token/v1/token_pb.js";
import { field as fieldRules } from "../../gen/proto/buf/validate/validate_pb.js";
import { services } from "../../src/app/modules.js";
import { requestValidator } from "../../src/core/request-rules.js";

const requests = [...new Set(services.flatMap((s) => s.methods.map((m) => m.input)))];
const validator = requestValidator(services);

describe("request rules", () => {
  it("bounds the page size of every List request (readPage trusts it)", () => {
    const paged = requests.filter((r) => r.fields.some((f) => f.name === "page_size"));
    expect(paged.length).toBeGreaterThanOrEqual(6);
    for (const request of paged) {
      const pageSize = request.fields.find((f) => f.name === "page_size");
      const rules = pageSize && hasOption(pageSize, fieldRules) ? getOption(pageSize, fieldRules).type : undefined;
      expect(rules?.case, request.typeName).toBe("int32");
      if (rules?.case !== "int32") continue;
      expect(rules.value.greaterThan, request.typeName).toEqual({ case: "gte", value: 0 });
      expect(rules.value.lessThan.case, request.typeName).toBe("lte");
    }
  });

  /** The rule ids a value breaks, as an agent's display name (text, not_blank) and a tenant's (line). */
  function broken(displayName: string) {
    const ids = (schema: typeof RegisterAgentRequestSchema | typeof CreateTenantRequestSchema) => {
      const result = validator.validate(schema, create(schema, { name: "acme", displayName }));
      return result.kind === "invalid" ? result.violations.map((v) => v.ruleId) : [];
    };
    return { agent: ids(RegisterAgentRequestSchema), tenant: ids(CreateTenantRequestSchema) };
  }

  it.each([
    ["plain text", "Build bot", [], []],
    ["letters beyond Latin-1 and emoji", "Überwachung 監視 🤖", [], []],
    ["tab and newline", "Build\tbot\nline two", [], ["string.line"]],
    ["a bell", "bell\u0007", ["string.text"], ["string.line"]],
    ["a C1 control character", "next\u0085line", ["string.text"], ["string.line"]],
    ["nothing", "", ["string.not_blank"], []],
    ["only tab, space and newline", " \t\n", ["string.not_blank"], ["string.line"]],
    ["a carriage return", "line\r\n", ["string.text"], ["string.line"]],
    ["only Unicode spaces and a BOM", "\u00a0\u2003\u3000\ufeff", ["string.not_blank"], []],
  ])("text rules on %s", (_, value, agent, tenant) => {
    expect(broken(value)).toEqual({ agent, tenant });
  });

  it.each([
    ["a URL", "https://api.example.com/v1", []],
    ["an identifier with punctuation", "urn:example:billing@prod", []],
    ["a space", "two words", ["string.no_white_space"]],
    ["a tab or newline", "api\texample\n", ["string.no_white_space"]],
    ["a Unicode space", "api\u00a0example", ["string.no_white_space"]],
    ["nothing", "", ["required"]],
  ])("an audience with %s", (_, audience, ids) => {
    const result = validator.validate(MintTokenRequestSchema, create(MintTokenRequestSchema, { audience }));
    expect(result.kind === "invalid" ? result.violations.map((v) => v.ruleId) : []).toEqual(ids);
  });
});
