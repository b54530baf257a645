// `npm run test:cluster`: HAProxy in front of three broker processes on one
// PostgreSQL (test/cluster/). One file, one fork: it runs four processes of
// its own already.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/cluster/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: "forks",
    maxWorkers: 1,
  },
});
