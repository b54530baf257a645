// HTTP caching of RPC answers (RFC 9111, RFC 9110 §8.8.3 and §13.1.2).
//
// - Every RPC answer, success or error, says `Cache-Control: no-store`
//   unless its handler set a policy of its own: answers carry credentials,
//   personal data and tenant records, and a Connect GET answer (or a 404
//   NotFound) would otherwise be cacheable by heuristics.
// - An answer its handler declared cacheable (GetJwks: the same for every
//   caller) gets a strong `ETag` when asked for with a Connect GET, the
//   digest of the exact bytes sent (codec and compression included), and a
//   GET whose `If-None-Match` names it is answered 304 with no body.
import { createHash } from "node:crypto";
import { ConnectError, type Interceptor } from "@connectrpc/connect";

const noStore = "no-store";

/** Sets `Cache-Control: no-store` on every answer whose handler set none. */
export const cacheControl: Interceptor = (next) => async (req) => {
  try {
    const res = await next(req);
    if (!res.header.has("cache-control")) res.header.set("cache-control", noStore);
    return res;
  } catch (error) {
    if (error instanceof ConnectError) error.metadata.set("cache-control", noStore);
    throw error;
  }
};

/** Whether an answer with this `Cache-Control` may be kept by a cache, and so deserves a validator. */
export function isCacheable(cacheControlValue: string | null | undefined): boolean {
  if (!cacheControlValue) return false;
  return !/(?:^|,)\s*(?:no-store|private)\s*(?:,|$)/i.test(cacheControlValue);
}

/** A strong entity tag of the bytes of a representation. */
export function strongEtag(body: Uint8Array): string {
  return `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`;
}

/**
 * Whether `If-None-Match` names `etag` (RFC 9110 §13.1.2: weak comparison,
 * so `W/"x"` names `"x"`; `*` names any current representation).
 */
export function ifNoneMatchNames(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(",").some((item) => {
    const tag = item.trim();
    return tag === "*" || tag === etag || tag === `W/${etag}`;
  });
}
