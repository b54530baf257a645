// The house's dependency rule (STYLE.md, "The house"), checked by `npm run lint`:
//
//   app → transport → <domain> → {auth, policy, crypto, protocol} → core → db
//
// A domain reaches a peer only through the peer's index.ts; nothing outside
// app/ imports transport/; protocol/ stands alone (the SDK ships it); the
// SDK and the CLI use protocol/ and generated clients, the CLI starts the
// broker through app/ only. No exceptions.
const domains =
  "(tenants|principals|people|agents|apikeys|grants|resource-servers|roles|tokens|credentials|leases|device|audit|health|metrics|oauth|bootstrap|developer|reflection|kms)";
const mid = "(auth|policy|crypto)";

module.exports = {
  forbidden: [
    { name: "no-circular", severity: "error", from: {}, to: { circular: true } },
    {
      name: "db-is-the-floor",
      comment: "db/ imports nothing of the broker above it",
      severity: "error",
      from: { path: "^src/db/" },
      to: { path: "^src/", pathNot: "^src/db/" },
    },
    {
      name: "core-below-everything-but-db",
      severity: "error",
      from: { path: "^src/core/" },
      to: { path: "^src/", pathNot: "^src/(core|db)/" },
    },
    {
      name: "protocol-stands-alone",
      comment: "the SDK ships protocol/: it must not pull broker internals in",
      severity: "error",
      from: { path: "^src/protocol/" },
      to: { path: "^src/", pathNot: "^src/protocol/" },
    },
    {
      name: "mid-layers-below-domains",
      severity: "error",
      from: { path: `^src/${mid}/` },
      to: { path: `^src/(${domains.slice(1, -1)}|transport|app|cli|sdk)/` },
    },
    {
      name: "domains-never-import-transport-or-app",
      severity: "error",
      from: { path: `^src/${domains}/` },
      to: { path: "^src/(transport|app|cli|sdk)/" },
    },
    {
      name: "peer-domains-through-index",
      comment: "a domain reaches another only through that domain's index.ts",
      severity: "error",
      from: { path: `^src/${domains}/` },
      to: { path: `^src/${domains}/(?!index\\.ts$)`, pathNot: "^src/$1/" },
    },
    {
      name: "transport-knows-no-domain",
      comment: "modules hand their services and routes to app/, which hands them to transport/",
      severity: "error",
      from: { path: "^src/transport/" },
      to: { path: `^src/(${domains.slice(1, -1)}|app|cli|sdk)/` },
    },
    {
      name: "only-app-imports-transport",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/(app|transport)/" },
      to: { path: "^src/transport/" },
    },
    {
      name: "sdk-uses-protocol-only",
      severity: "error",
      from: { path: "^src/sdk/" },
      to: { path: "^src/", pathNot: "^src/(sdk|protocol)/" },
    },
    {
      name: "cli-uses-app-protocol-sdk",
      severity: "error",
      from: { path: "^src/cli/" },
      to: { path: "^src/", pathNot: "^src/(cli|app|protocol|sdk)/" },
    },
    {
      name: "packaged-cli-without-broker",
      comment:
        "the npm package ships the CLI without the broker (scripts/build-package.mjs): only server-commands.ts, which main.ts adds, reaches app/",
      severity: "error",
      from: { path: "^src/cli/", pathNot: "^src/cli/(server-commands|main)\\.ts$" },
      to: { path: "^src/(app/|cli/server-commands\\.ts$)" },
    },
    {
      name: "tests-never-reach-into-src-from-src",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "^test/" },
    },
  ],
  options: {
    doNotFollow: { path: ["node_modules", "^gen/"] },
    exclude: { path: ["^gen/", "node_modules"] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default"] },
  },
};
