// Prisma CLI configuration (generate, migrate deploy, migrate diff). Uses the
// WebAssembly schema engine through a driver adapter, so no native engine is
// ever downloaded; see README "Migrations". The broker itself applies
// migrations in-process at start (src/db/migrate.ts).
import { mkdirSync } from "node:fs";
import path from "node:path";
import { defineConfig } from "prisma/config";

// The CLI refuses to read the schema without a datasource URL and then tries
// to fetch a native engine; the adapter below decides where it connects.
process.env.DATABASE_URL ??= "postgresql://localhost/aegis-cli-placeholder";

export default defineConfig({
  schema: path.join("prisma", "schema.prisma"),
  experimental: { adapter: true },
  engine: "js",
  async adapter() {
    const url = process.env.AEGIS_DATABASE_URL || undefined;
    if (url) {
      const { PrismaPg } = await import("@prisma/adapter-pg");
      return new PrismaPg({ connectionString: url });
    }
    const { PGlite } = await import("@electric-sql/pglite");
    const { PrismaPGlite } = await import("pglite-prisma-adapter");
    const dataDir = path.join(process.env.AEGIS_DATA_DIR ?? "data", "pglite");
    mkdirSync(dataDir, { recursive: true });
    // Same adapter-interface version skew as in src/db/database.ts.
    return new PrismaPGlite(new PGlite(dataDir)) as unknown as import("@prisma/adapter-pg").PrismaPg;
  },
});
