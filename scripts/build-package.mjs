// `npm run build` (run by `npm ci` and `npm pack` through `prepare`): compiles
// the npm package aegis-broker into dist/ with tsc (tsconfig.build.json: the
// package's entry points and what they import, laid out as in the
// repository, dist/src and dist/gen). The repository's package.json is the
// package's manifest: `files` ships dist/ alone, `exports` names the public
// entry points, `bin` the client `aegis`, and `dependencies` lists exactly
// the packages the compiled files import (the broker's own packages are
// devDependencies: the broker runs from a checkout, where `npm ci` installs
// them). This script refuses a build that breaks that last rule either way.
// `--out-dir DIR` builds into DIR instead of dist/.
import { execFileSync } from "node:child_process";
import { chmodSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { builtinModules, createRequire } from "node:module";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const outDirFlag = process.argv.indexOf("--out-dir");
const dist = outDirFlag === -1 ? path.join(root, "dist") : path.resolve(process.argv[outDirFlag + 1]);
const manifest = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));

rmSync(dist, { recursive: true, force: true });
execFileSync(
  process.execPath,
  [createRequire(import.meta.url).resolve("typescript/bin/tsc"), "-p", "tsconfig.build.json", "--outDir", dist],
  { cwd: root, stdio: "inherit" },
);

const imported = new Set();
for (const file of readdirSync(dist, { recursive: true, withFileTypes: true })) {
  if (!file.isFile() || !/\.(js|d\.ts)$/.test(file.name)) continue;
  const text = readFileSync(path.join(file.parentPath, file.name), "utf8");
  for (const [, specifier] of text.matchAll(/(?:from|import|require)\s*\(?\s*"([^"]+)"/g)) {
    if (specifier.startsWith(".") || specifier.startsWith("node:") || builtinModules.includes(specifier)) continue;
    const parts = specifier.split("/");
    const name = specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
    // The package reads its own manifest, and its header comments import it.
    if (name !== manifest.name) imported.add(name);
  }
}
const declared = Object.keys(manifest.dependencies).sort();
const missing = [...imported].filter((name) => !declared.includes(name));
const unused = declared.filter((name) => !imported.has(name));
if (missing.length > 0 || unused.length > 0) {
  throw new Error(
    `package.json's dependencies must be exactly what the package imports: ${[
      ...missing.map((name) => `add ${name} (imported, now in devDependencies or nowhere)`),
      ...unused.map((name) => `move ${name} to devDependencies (the package does not import it)`),
    ].join("; ")}`,
  );
}
const bin = path.join(dist, path.relative("dist", manifest.bin.aegis));
chmodSync(bin, 0o755);
console.log(
  `${path.relative(process.cwd(), dist) || "."}: aegis-broker ${manifest.version}, dependencies ${declared.join(", ")}`,
);
