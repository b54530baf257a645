// Prisma CLI configuration (generate, migrate deploy, migrate diff). Uses the
// WebAssembly schema engine through a driver adapter, so no native engine is
// ever downloaded; see README "Migrations". The broker itself applies
// migrations in-process at start (src/db/migrate.ts).
import path from "node:path";
import type { PrismaPg } from "@prisma/adapter-pg";
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
    return embeddedAdapter(path.join(process.env.AEGIS_DATA_DIR ?? "data", "pglite"));
  },
});

// The CLI builds the adapter for every command, `prisma -v` and `prisma
// generate` (both run by `npm ci`) included: open the embedded database only
// when a command really connects, so those neither create nor open ./data.
async function embeddedAdapter(dataDir: string): Promise<PrismaPg> {
  const { PrismaPGlite } = await import("pglite-prisma-adapter");
  const { openPglite } = await import("./src/db/pglite.js");
  class OpenOnConnect extends PrismaPGlite {
    override async connect() {
      return new PrismaPGlite(await openPglite(dataDir)).connect();
    }
  }
  // Same adapter-interface version skew as in src/db/database.ts.
  return new OpenOnConnect(undefined as never) as unknown as PrismaPg;
}
