// Serves the developer portal built at install (gen/developer/site/, see
// build/build-site.ts): pages, the script and stylesheet, the search index,
// the catalogue and the OpenAPI document, all read into memory once at
// start. Every answer carries a strict Content-Security-Policy (only this
// origin; no inline script, no eval, no framing) and an ETag; clients
// revalidate (`no-cache`), so a new build is seen at once and an unchanged
// one costs a 304.
import { existsSync, readFileSync } from "node:fs";
import type { NodeServerRequest, NodeServerResponse } from "../core/http.js";
import type { HttpRoute } from "../core/module.js";

export const portalCsp =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

interface ManifestEntry {
  readonly file: string;
  readonly type: string;
  readonly etag: string;
}

interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

/** The built portal: URL path → content. Empty when the portal was not built. */
export function loadPortal(siteDir: URL): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const manifestFile = new URL("manifest.json", siteDir);
  if (!existsSync(manifestFile)) return assets;
  const manifest = JSON.parse(readFileSync(manifestFile, "utf8")) as Record<string, ManifestEntry>;
  for (const [path, entry] of Object.entries(manifest)) {
    assets.set(path, { body: readFileSync(new URL(entry.file, siteDir)), type: entry.type, etag: entry.etag });
  }
  return assets;
}

const securityHeaders = {
  "content-security-policy": portalCsp,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

export function portalRoutes(assets: ReadonlyMap<string, Asset>): HttpRoute[] {
  const serve = async (req: NodeServerRequest, res: NodeServerResponse) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (path === "/developer/") {
      res.writeHead(308, { location: "/developer", "cache-control": "no-cache", ...securityHeaders });
      return void res.end();
    }
    const asset = assets.get(path);
    if (!asset) {
      res.writeHead(404, {
        "content-type": "text/plain; charset=utf-8",
        "cache-control": "no-store",
        ...securityHeaders,
      });
      return void res.end(
        assets.size === 0 ? "The developer portal was not built (npm run generate).\n" : "Not found\n",
      );
    }
    const headers = {
      "content-type": asset.type,
      "cache-control": "no-cache",
      etag: asset.etag,
      ...securityHeaders,
    };
    if (req.headers["if-none-match"] === asset.etag) {
      res.writeHead(304, headers);
      return void res.end();
    }
    res.writeHead(200, { ...headers, "content-length": String(asset.body.length) });
    res.end(asset.body);
  };
  return [
    { method: "GET", path: "/developer", handle: serve },
    { method: "GET", path: "/developer/*", handle: serve },
  ];
}
