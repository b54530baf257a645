// The protobuf plugin of the developer portal, run by `buf generate` (see
// buf.gen.yaml): writes developer/catalogue.json (the public services and
// methods, their schemas and policies, see ../catalogue.ts) and
// developer/openapi.json (OpenAPI 3.1 of the Connect JSON endpoints). Private
// operations are left out here, at generation time, so the portal built from
// these files cannot ship their names.
import { createRegistry } from "@bufbuild/protobuf";
import { createEcmaScriptPlugin, runNodeJs } from "@bufbuild/protoplugin";
import { describePublicApi } from "./describe.js";
import { openApiDocument } from "./openapi.js";

const version = "0.1.0";

export const portalPlugin = createEcmaScriptPlugin({
  name: "protoc-gen-aegis-portal",
  version: `v${version}`,
  generateTs(schema) {
    const catalogue = describePublicApi(schema.allFiles, createRegistry(...schema.allFiles));
    schema.generateFile("catalogue.json").print(JSON.stringify(catalogue, null, 1));
    schema.generateFile("openapi.json").print(JSON.stringify(openApiDocument(catalogue, version), null, 1));
  },
});

runNodeJs(portalPlugin);
