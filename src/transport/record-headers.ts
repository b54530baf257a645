// The Fetch `Headers` of a call, kept in a plain Map: what the RPC fast path
// (rpc-handler.ts) and the HTTP router hand to interceptors, the pipeline and
// handlers as the request's headers, and collect the response's in. Node's
// own `Headers` (undici's) validates through WebIDL converters and keeps a
// sorted list besides its map; made from a request's dozen headers and twice
// more for the response, on every call, it was a few microseconds of a
// MintToken and as much again in garbage (profiles on the bench host).
//
// The semantics are the Fetch standard's (https://fetch.spec.whatwg.org/#headers-class),
// which test/unit/record-headers.test.ts holds side by side with Node's:
// names are case-insensitive, values are trimmed of HTTP white space, and a
// name or value that is not allowed throws a TypeError; `get` joins repeated
// values with ", "; iteration is in name order, `set-cookie` values one by
// one. No guard: these are a server's own request and response headers.
import type { IncomingHttpHeaders } from "node:http";

const token = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A header value is trimmed of HTTP white space, then may hold any byte (a code point up to 0xFF) but NUL, CR and LF. */
const httpWhiteSpaceAtEnds = /^[\t\n\r ]+|[\t\n\r ]+$/g;
const forbiddenInValue = /[\0\r\n]|[^\0-\xff]/;

function headerName(name: string): string {
  const lower = String(name).toLowerCase();
  if (!token.test(lower)) throw new TypeError(`invalid header name: ${JSON.stringify(String(name).slice(0, 60))}`);
  return lower;
}

function headerValue(value: string): string {
  const trimmed = String(value).replace(httpWhiteSpaceAtEnds, "");
  if (forbiddenInValue.test(trimmed)) throw new TypeError("invalid header value");
  return trimmed;
}

/** Adds a header to an object for Node's `writeHead`: a name already there (set-cookie, a trailer's `trailer-` twin) becomes a list. */
export function addNodeHeader(target: Record<string, string | string[]>, name: string, value: string): void {
  const existing = target[name];
  if (existing === undefined) target[name] = value;
  else target[name] = [...(Array.isArray(existing) ? existing : [existing]), value];
}

type Entries = IterableIterator<[string, string]>;
type Names = IterableIterator<string>;

export class RecordHeaders implements Headers {
  /** Lower-case name → value, repeated values joined with ", " (set-cookie apart). */
  readonly #values = new Map<string, string>();
  readonly #cookies: string[] = [];

  /** A copy of `init`: a Node request's header object (parsed and checked by Node; pseudo-headers left out), or pairs. */
  constructor(init?: IncomingHttpHeaders | Iterable<readonly [string, string]>) {
    if (!init) return;
    if (Symbol.iterator in init) {
      for (const [name, value] of init as Iterable<readonly [string, string]>) this.append(name, value);
      return;
    }
    for (const name in init) {
      const value = (init as IncomingHttpHeaders)[name];
      // HTTP/2's pseudo-headers (`:path`, …) are not headers.
      if (value === undefined || name.startsWith(":")) continue;
      if (name === "set-cookie") this.#cookies.push(...(Array.isArray(value) ? value : [value]));
      else this.#values.set(name, Array.isArray(value) ? value.join(", ") : value);
    }
  }

  append(name: string, value: string): void {
    const key = headerName(name);
    const v = headerValue(value);
    if (key === "set-cookie") {
      this.#cookies.push(v);
      return;
    }
    const existing = this.#values.get(key);
    this.#values.set(key, existing === undefined ? v : `${existing}, ${v}`);
  }

  set(name: string, value: string): void {
    const key = headerName(name);
    const v = headerValue(value);
    if (key === "set-cookie") this.#cookies.splice(0, this.#cookies.length, v);
    else this.#values.set(key, v);
  }

  delete(name: string): void {
    const key = headerName(name);
    if (key === "set-cookie") this.#cookies.length = 0;
    else this.#values.delete(key);
  }

  get(name: string): string | null {
    const key = headerName(name);
    if (key === "set-cookie") return this.#cookies.length > 0 ? this.#cookies.join(", ") : null;
    return this.#values.get(key) ?? null;
  }

  has(name: string): boolean {
    const key = headerName(name);
    return key === "set-cookie" ? this.#cookies.length > 0 : this.#values.has(key);
  }

  getSetCookie(): string[] {
    return [...this.#cookies];
  }

  forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void {
    for (const [name, value] of this.entries()) callback.call(thisArg, value, name, this);
  }

  /**
   * Adds these headers to an object for Node's `writeHead`, each name after
   * `prefix`, `set-cookie` as a list: in the order they were set, without
   * the sorting and the iterator that Fetch's iteration takes.
   */
  addTo(target: Record<string, string | string[]>, prefix = ""): void {
    for (const [name, value] of this.#values) addNodeHeader(target, prefix + name, value);
    for (const cookie of this.#cookies) addNodeHeader(target, `${prefix}set-cookie`, cookie);
  }

  *entries(): Entries {
    const names = [...this.#values.keys()];
    if (this.#cookies.length > 0) names.push("set-cookie");
    names.sort();
    for (const name of names) {
      if (name === "set-cookie") for (const cookie of this.#cookies) yield [name, cookie];
      else yield [name, this.#values.get(name) as string];
    }
  }

  *keys(): Names {
    for (const [name] of this.entries()) yield name;
  }

  *values(): Names {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): Entries {
    return this.entries();
  }

  get [Symbol.toStringTag](): string {
    return "Headers";
  }
}
