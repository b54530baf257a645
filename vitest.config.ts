import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The cluster test (HAProxy, three broker processes) runs on its own: npm run test:cluster.
    exclude: [...configDefaults.exclude, "test/cluster/**"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Each file opens its own database and broker; two workers match the cores.
    pool: "forks",
    maxWorkers: 2,
  },
});
