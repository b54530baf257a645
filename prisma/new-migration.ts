// `npm run migration:new -- <name>`: writes the next migration by diffing the
// datamodel as of the last migration against prisma/schema.prisma.
//
// `prisma migrate dev` and `migrate diff --from-migrations` need a shadow
// database, which the WebAssembly schema engine cannot drive reliably (see
// README "Migrations"). A datamodel-to-datamodel diff touches no database, so
// each migration folder keeps the schema it was generated from
// (`schema.prisma`, ignored by `migrate deploy`) as the next diff's start.
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const migrationsDir = path.join("prisma", "migrations");
const schema = path.join("prisma", "schema.prisma");

const name = process.argv[2];
if (!name || !/^[a-z][a-z0-9_]{0,62}$/.test(name)) {
  console.error("usage: npm run migration:new -- <name>   (lower-case letters, digits and _)");
  process.exit(2);
}

mkdirSync(migrationsDir, { recursive: true });
const previous = readdirSync(migrationsDir, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort()
  .at(-1);
const from = previous
  ? ["--from-schema-datamodel", path.join(migrationsDir, previous, "schema.prisma")]
  : ["--from-empty"];
if (previous && !existsSync(from[1] as string)) {
  console.error(`${from[1]} is missing: every migration keeps the schema it was made from.`);
  process.exit(1);
}

// migrate diff prints "Loaded Prisma config…" on stdout, so write to a file.
// The diff touches no database, but the CLI still opens the configured
// adapter: point it at a throw-away embedded one, never the real data.
const scratch = mkdtempSync(path.join(tmpdir(), "aegis-migration-"));
const out = path.join(scratch, "migration.sql");
execFileSync("npx", ["prisma", "migrate", "diff", ...from, "--to-schema-datamodel", schema, "--script", "-o", out], {
  stdio: ["ignore", "ignore", "inherit"],
  env: { ...process.env, AEGIS_DATABASE_URL: "", AEGIS_DATA_DIR: scratch },
});
const sql = readFileSync(out, "utf8");
if (!/^\s*[A-Z]/m.test(sql.replace(/^--.*$/gm, ""))) {
  console.error("The schema has not changed since the last migration; nothing written.");
  process.exit(1);
}

const stamp = new Date().toISOString().replace(/\D/g, "").slice(0, 14);
const dir = path.join(migrationsDir, `${stamp}_${name}`);
mkdirSync(dir);
writeFileSync(path.join(dir, "migration.sql"), sql);
copyFileSync(schema, path.join(dir, "schema.prisma"));
writeFileSync(path.join(migrationsDir, "migration_lock.toml"), 'provider = "postgresql"\n');
console.log(`wrote ${dir}/migration.sql`);
