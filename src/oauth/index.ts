// The standard OAuth endpoints and well-known metadata, so off-the-shelf
// clients work with nothing but the metadata URL.
import type { BrokerModule } from "../core/module.js";
import { type OAuthDeps, oauthRoutes } from "./oauth-routes.js";

export type { OAuthDeps };

export function oauthModule(deps: OAuthDeps): BrokerModule {
  return { name: "oauth", routes: oauthRoutes(deps) };
}
