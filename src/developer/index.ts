// The developer portal: pages, guides, ⌘K search, "Try it", and the OpenAPI
// document at /developer, generated from the protos at install (public
// operations only; see plugin/ and build/). Its module serves the built
// files; it has no RPC of its own.
import type { BrokerModule } from "../core/module.js";
import { loadPortal, portalCsp, portalRoutes } from "./portal-routes.js";

export { portalCsp };

/** Where `npm run generate` writes the built portal. */
export const portalSiteDir = new URL("../../gen/developer/site/", import.meta.url);

export function developerModule(siteDir: URL = portalSiteDir): BrokerModule {
  return { name: "developer", routes: portalRoutes(loadPortal(siteDir)) };
}
