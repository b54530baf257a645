// node-postgres's own conversion of a parameter to its wire text (arrays to
// array literals, dates to ISO timestamps, buffers to bytea), which @types/pg
// does not declare; pglite-prepared.ts sends parameters as node-postgres does.
declare module "pg/lib/utils.js" {
  const utils: { prepareValue(value: unknown): string | Buffer | null };
  export default utils;
}
