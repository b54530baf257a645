// The request rules declared in proto, read through the generated
// descriptors: what every RPC must declare, and what the shared rules accept.
import { getOption, hasOption } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { field as fieldRules } from "../../gen/proto/buf/validate/validate_pb.js";
import { services } from "../../src/app/modules.js";

const requests = [...new Set(services.flatMap((s) => s.methods.map((m) => m.input)))];

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
});
