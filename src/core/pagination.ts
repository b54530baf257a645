// Opaque page tokens (AIP-158 style): the id after which the next page
// starts, base64url-wrapped so clients treat it as opaque. The page size's
// range is a request rule on each List request's `page_size`, enforced
// before the handler runs (a test checks that none lacks it).
import { invalidArgument } from "./errors/domain-error.js";

export interface Page {
  readonly size: number;
  readonly after: string | undefined;
}

export function readPage(request: { pageSize: number; pageToken: string }, fallback = 100): Page {
  let after: string | undefined;
  if (request.pageToken !== "") {
    const decoded = request.pageToken.length <= 200 ? Buffer.from(request.pageToken, "base64url").toString("utf8") : "";
    if (!decoded.startsWith("v1:") || decoded.length < 4) {
      throw invalidArgument([{ field: "page_token", description: "is not a token returned by this method" }]);
    }
    after = decoded.slice(3);
  }
  return { size: request.pageSize === 0 ? fallback : request.pageSize, after };
}

/** Given one row more than the page size, returns the page and the token for the next one. */
export function pageOf<T>(rows: T[], page: Page, keyOf: (row: T) => string): { items: T[]; nextPageToken: string } {
  if (rows.length <= page.size) return { items: rows, nextPageToken: "" };
  const items = rows.slice(0, page.size);
  const last = items[items.length - 1] as T;
  return { items, nextPageToken: Buffer.from(`v1:${keyOf(last)}`).toString("base64url") };
}
