// The ⌘K search index's options, shared by the build (which indexes) and
// the browser (which loads the serialized index): MiniSearch needs the same
// fields on both sides.
import type { Options, SearchOptions } from "minisearch";

export interface SearchDoc {
  readonly id: string;
  readonly kind: "Operation" | "Guide";
  readonly title: string;
  /** The service of an operation, the page of a guide section. */
  readonly context: string;
  readonly text: string;
  readonly url: string;
}

export const searchOptions: Options<SearchDoc> = {
  fields: ["title", "context", "text"],
  storeFields: ["kind", "title", "context", "url"],
  // "RedeemLease" is found by "redeem": split camel case as well as words.
  tokenize: (text) => text.split(/[\s\-_.,:;/()`'"[\]{}<>]+|(?<=[a-z])(?=[A-Z])/u).filter(Boolean),
};

export const queryOptions: SearchOptions = {
  prefix: true,
  fuzzy: 0.2,
  boost: { title: 4, context: 1.5 },
  combineWith: "AND",
};
