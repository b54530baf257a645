// Names clients may rely on across installations.

/** The public OAuth client of the operators' tenant that `aegis login` uses by default. */
export const defaultCliClientId = "aegis-cli";

/** The broker's own public client: the developer portal's sign-in (authorization code + PKCE). */
export const developerPortalClientId = "aegis-developer-portal";

/** Where the developer portal's sign-in returns, below the broker's public URL. */
export const developerPortalCallbackPath = "/developer/callback";
