// Builds the developer portal at install (`npm run generate`, after buf
// generate wrote gen/developer/catalogue.json): the static pages, the ⌘K
// search index (MiniSearch, serialized), the browser script bundled by
// esbuild (no CDN: everything it needs is in the bundle) and the stylesheet,
// into gen/developer/site/ with a manifest the broker serves from memory.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { build } from "esbuild";
import MiniSearch from "minisearch";
import { type Catalogue, operationPath } from "../catalogue.js";
import { type SearchDoc, searchOptions } from "../site/search-options.js";
import { errorsOf } from "./errors-of.js";
import { callbackBody, guideBody, homeBody, markdown, operationBody, page, slug } from "./pages.js";

const root = path.resolve(import.meta.dirname, "../../..");
const genDir = path.join(root, "gen/developer");
const outDir = path.join(genDir, "site");

export interface ManifestEntry {
  readonly file: string;
  readonly type: string;
  readonly etag: string;
}

const catalogue = JSON.parse(readFileSync(path.join(genDir, "catalogue.json"), "utf8")) as Catalogue;
const guide = (name: string) => readFileSync(path.join(root, "docs/developer", `${name}.md`), "utf8");

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
const manifest: Record<string, ManifestEntry> = {};
function emit(urlPath: string, file: string, type: string, content: string | Uint8Array) {
  const target = path.join(outDir, file);
  mkdirSync(path.dirname(target), { recursive: true });
  writeFileSync(target, content);
  const etag = `"${createHash("sha256").update(content).digest("base64url").slice(0, 22)}"`;
  manifest[urlPath] = { file, type, etag };
}
const html = "text/html; charset=utf-8";

// Guides: home (its Markdown part), security, patterns; each section is a search entry.
const docs: SearchDoc[] = [];
function indexGuide(urlPath: string, title: string, text: string) {
  const tokens = markdown.parse(text, {});
  let heading = title;
  let anchor = "";
  let body: string[] = [];
  const flush = () => {
    if (heading) {
      docs.push({
        id: `${urlPath}#${anchor}`,
        kind: "Guide",
        title: heading,
        context: title,
        text: body.join(" ").slice(0, 2000),
        url: anchor ? `${urlPath}#${anchor}` : urlPath,
      });
    }
  };
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    if (token?.type === "heading_open") {
      flush();
      heading = (tokens[i + 1]?.content ?? "").replace(/`/g, "");
      anchor = slug(heading);
      body = [];
      i++;
    } else if (token?.type === "inline") body.push(token.content);
  }
  flush();
}

const home = guide("home");
indexGuide("/developer", "Home", home);
emit(
  "/developer",
  "index.html",
  html,
  page({ title: "Home", path: "/developer", catalogue, body: homeBody(catalogue, guideBody(home)) }),
);
for (const [name, title] of [
  ["security", "Security"],
  ["patterns", "Patterns"],
] as const) {
  const text = guide(name);
  indexGuide(`/developer/${name}`, title, text);
  emit(
    `/developer/${name}`,
    `${name}.html`,
    html,
    page({ title, path: `/developer/${name}`, catalogue, body: guideBody(text) }),
  );
}
emit(
  "/developer/callback",
  "callback.html",
  html,
  page({ title: "Signing in", path: "/developer/callback", catalogue, body: callbackBody() }),
);

for (const service of catalogue.services) {
  for (const method of service.methods) {
    const urlPath = operationPath(method);
    docs.push({
      id: urlPath,
      kind: "Operation",
      title: method.name,
      context: service.name,
      text: `${method.policy.action} ${method.description}`,
      url: urlPath,
    });
    const errors = errorsOf(method, path.join(root, "src"));
    emit(
      urlPath,
      `api/${method.service}/${method.name}.html`,
      html,
      page({
        title: `${method.name} (${service.name})`,
        path: urlPath,
        catalogue,
        body: operationBody(method, catalogue, errors),
      }),
    );
  }
}

const index = new MiniSearch<SearchDoc>(searchOptions);
index.addAll(docs);
emit("/developer/assets/search-index.json", "assets/search-index.json", "application/json", JSON.stringify(index));
emit("/developer/catalogue.json", "catalogue.json", "application/json", JSON.stringify(catalogue));
emit("/developer/openapi.json", "openapi.json", "application/json", readFileSync(path.join(genDir, "openapi.json")));
emit(
  "/developer/assets/portal.css",
  "assets/portal.css",
  "text/css; charset=utf-8",
  readFileSync(path.join(root, "src/developer/site/portal.css")),
);

const bundle = await build({
  entryPoints: [path.join(root, "src/developer/site/portal.ts")],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  legalComments: "none",
  write: false,
});
emit(
  "/developer/assets/portal.js",
  "assets/portal.js",
  "text/javascript; charset=utf-8",
  bundle.outputFiles[0]?.contents ?? "",
);
writeFileSync(path.join(outDir, "manifest.json"), JSON.stringify(manifest, null, 1));
console.log(`developer portal: ${Object.keys(manifest).length} files in ${path.relative(root, outDir)}`);
