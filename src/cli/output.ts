// How operator and person commands print what the broker answered, the same
// way for every noun: a table (lists) or label/value lines (one resource)
// for people, or with --json the message in the API's own JSON form
// (protobuf JSON, as `buf curl` prints it) for scripts. Lists follow
// `next_page_token`: one page by default (the token of the next one goes to
// stderr), every page with --all.
import {
  create,
  type DescMessage,
  type JsonValue,
  type MessageInitShape,
  type MessageShape,
  toJson,
} from "@bufbuild/protobuf";
import { type Duration, durationFromMs, durationMs, type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import { type Command, InvalidArgumentError } from "commander";

/** `message` in protobuf JSON form, to print or to combine with others. */
export function jsonOf<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): JsonValue {
  return toJson(schema, message);
}

/** Prints a JSON document on stdout. */
export function printJsonValue(value: JsonValue): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Prints `message` as protobuf JSON, one document on stdout. */
export function printJson<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): void {
  printJsonValue(jsonOf(schema, message));
}

/**
 * Prints one resource the broker answered: with --json in protobuf JSON,
 * else as `show` lays it out (label/value lines, a table). An absent message
 * prints as an empty one.
 */
export function printResource<Desc extends DescMessage>(
  schema: Desc,
  message: MessageShape<Desc> | undefined,
  json: boolean | undefined,
  show: (value: MessageShape<Desc>) => void,
): void {
  const value = message ?? create(schema);
  if (json) printJson(schema, value);
  else show(value);
}

/** Prints rows under a header, columns padded to their widest cell; "(none)" for no rows. */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  if (rows.length === 0) {
    process.stdout.write("(none)\n");
    return;
  }
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  process.stdout.write(`${[line(header.map((h) => h.toUpperCase())), ...rows.map(line)].join("\n")}\n`);
}

/** Prints one resource as aligned `label: value` lines; empty values are left out. */
export function printFields(fields: readonly (readonly [string, string | undefined])[]): void {
  const shown = fields.filter(([, value]) => value !== undefined && value !== "");
  const width = Math.max(...shown.map(([label]) => label.length));
  process.stdout.write(`${shown.map(([label, value]) => `${`${label}:`.padEnd(width + 2)}${value}`).join("\n")}\n`);
}

/** A timestamp as ISO 8601 UTC to the second; empty when unset. */
export function formatTime(time: Timestamp | undefined): string {
  return time
    ? timestampDate(time)
        .toISOString()
        .replace(/\.\d{3}Z$/, "Z")
    : "";
}

/** An enum value's name without its prefix, in lower case: `PERSON_STATUS_ACTIVE` → `active`. */
export function enumName(names: Record<number, string>, value: number, prefix: string): string {
  return (names[value] ?? String(value)).replace(prefix, "").toLowerCase();
}

export interface PageOptions {
  all?: boolean;
  pageToken?: string;
  pageSize?: number;
  json?: boolean;
}

/** Parses an option given in whole seconds (`--ttl 3600`) into the API's Duration. */
export function seconds(value: string): Duration {
  if (!/^\d{1,10}$/.test(value)) throw new InvalidArgumentError("expected whole seconds");
  return durationFromMs(Number(value) * 1000);
}

/** A Duration as people read it, `300s`; `fallback` when unset. */
export function formatDuration(duration: Duration | undefined, fallback = ""): string {
  return duration === undefined ? fallback : `${durationMs(duration) / 1000}s`;
}

function pageSize(value: string): number {
  const size = Number(value);
  if (!Number.isInteger(size) || size < 1 || size > 500) throw new InvalidArgumentError("expected 1 to 500");
  return size;
}

/** Adds --all, --page-token and --page-size to a list command. */
export function withPaging(command: Command): Command {
  return command
    .option("--all", "follow next_page_token and print every page")
    .option("--page-token <token>", "start at this page (the token a previous page printed)")
    .option("--page-size <n>", "largest number per page (1 to 500)", pageSize);
}

/**
 * One page, or every page with --all: `fetch` is called with a page token
 * and size and returns that page's items and the next token. Without --all,
 * the next page's token is said on stderr so the table stays clean.
 */
export async function fetchPages<T>(
  options: PageOptions,
  fetch: (pageToken: string, pageSize: number) => Promise<{ items: T[]; nextPageToken: string }>,
): Promise<{ items: T[]; nextPageToken: string }> {
  const items: T[] = [];
  let token = options.pageToken ?? "";
  for (;;) {
    const page = await fetch(token, options.pageSize ?? 0);
    items.push(...page.items);
    token = page.nextPageToken;
    if (!token || !options.all) break;
  }
  if (token && !options.json) process.stderr.write(`more: run again with --page-token ${token} (or --all)\n`);
  return { items, nextPageToken: token };
}

type ItemOf<T> = T extends readonly (infer I)[] ? I : never;

/**
 * A list command's output: the list RPC's pages (`list` called with a page
 * token and size; one page, or every page with --all, as fetchPages does),
 * printed with --json as one response message of `schema` whose `field`
 * holds every item, else as a table with a `row` per item.
 */
export async function printPages<Desc extends DescMessage, Field extends keyof MessageShape<Desc> & string>(
  options: PageOptions,
  schema: Desc,
  field: Field,
  list: (pageToken: string, pageSize: number) => Promise<MessageShape<Desc>>,
  table: { header: readonly string[]; row: (item: ItemOf<MessageShape<Desc>[Field]>) => readonly string[] },
): Promise<void> {
  const { items, nextPageToken } = await fetchPages(options, async (pageToken, pageSize) => {
    const page = await list(pageToken, pageSize);
    return {
      items: page[field] as ItemOf<MessageShape<Desc>[Field]>[],
      nextPageToken: (page as { nextPageToken?: string }).nextPageToken ?? "",
    };
  });
  if (options.json)
    printJson(schema, create(schema, { [field]: items, nextPageToken } as unknown as MessageInitShape<Desc>));
  else printTable(table.header, items.map(table.row));
}
