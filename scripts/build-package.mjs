// `npm run build`: the npm package aegis-broker, built into dist/ and packed
// from there (`npm run package`, or `npm pack ./dist`). tsc compiles the
// package's entry points and what they import (tsconfig.build.json); this
// script then writes the package's own package.json: the public entry
// points only, the `aegis` client binary, no install scripts, and as
// dependencies exactly the packages the compiled files import, at the
// repository's versions. The repository's package.json (private, with its
// patch-package and generate steps and the broker's dependencies) never
// ships. `--out-dir DIR` builds into DIR instead of dist/ (the package test
// builds into a temporary directory).
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { builtinModules, createRequire } from "node:module";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const outDirFlag = process.argv.indexOf("--out-dir");
const dist = outDirFlag === -1 ? path.join(root, "dist") : path.resolve(process.argv[outDirFlag + 1]);
const bin = "src/cli/client-main.js";

rmSync(dist, { recursive: true, force: true });
execFileSync(
  process.execPath,
  [createRequire(import.meta.url).resolve("typescript/bin/tsc"), "-p", "tsconfig.build.json", "--outDir", dist],
  {
    cwd: root,
    stdio: "inherit",
  },
);

const repo = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
const imported = new Set();
for (const file of readdirSync(dist, { recursive: true, withFileTypes: true })) {
  if (!file.isFile() || !/\.(js|d\.ts)$/.test(file.name)) continue;
  const text = readFileSync(path.join(file.parentPath, file.name), "utf8");
  for (const [, specifier] of text.matchAll(/(?:from|import)\s*\(?\s*"([^"]+)"/g)) {
    if (specifier.startsWith(".") || specifier.startsWith("node:") || builtinModules.includes(specifier)) continue;
    const parts = specifier.split("/");
    const name = specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
    // The usage examples in the entry points' header comments import the package itself.
    if (name !== repo.name) imported.add(name);
  }
}
const dependencies = {};
for (const name of [...imported].sort()) {
  const version = repo.dependencies[name];
  if (!version) throw new Error(`the package imports ${name}, which is not in the repository's dependencies`);
  dependencies[name] = version;
}

const entry = (file) => ({ types: `./${file}.d.ts`, default: `./${file}.js` });
const manifest = {
  name: repo.name,
  version: repo.version,
  description: repo.description,
  type: "module",
  engines: repo.engines,
  exports: {
    "./sdk": entry("src/sdk/index"),
    "./client": entry("src/sdk/client"),
    "./package.json": "./package.json",
  },
  bin: { aegis: bin },
  files: ["src", "gen"],
  dependencies,
};
writeFileSync(path.join(dist, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
copyFileSync(path.join(root, "README.md"), path.join(dist, "README.md"));
chmodSync(path.join(dist, bin), 0o755);
console.log(
  `${path.relative(process.cwd(), dist) || "."}: aegis-broker ${repo.version}, dependencies ${Object.keys(dependencies).join(", ")}`,
);
