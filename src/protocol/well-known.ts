// Names clients may rely on across installations.

/** The public OAuth client of the operators' tenant that `aegis login` uses by default. */
export const defaultCliClientId = "aegis-cli";
