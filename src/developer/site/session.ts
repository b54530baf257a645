// What the portal holds for the person using it, in this page's memory only
// (never localStorage, sessionStorage or a cookie): a pasted API key, an
// access token (from signing in or minted with the key), and the page's
// DPoP key. The broker's metadata (issuer, endpoints) is fetched once.
import { createDpopKey, type DpopKey } from "./dpop.js";

export interface Metadata {
  readonly issuer: string;
  readonly authorization_endpoint?: string;
  readonly token_endpoint: string;
  readonly authorization_response_iss_parameter_supported?: boolean;
}

export interface AccessToken {
  readonly value: string;
  /** "DPoP" when bound to the page's key (sent with the DPoP scheme and a proof), else "Bearer". */
  readonly type: "DPoP" | "Bearer";
  readonly expiresAt: number;
}

class Session {
  apiKey = "";
  token: AccessToken | undefined;
  #dpop: Promise<DpopKey> | undefined;
  #metadata: Promise<Metadata> | undefined;
  readonly listeners = new Set<() => void>();

  dpop(): Promise<DpopKey> {
    this.#dpop ??= createDpopKey();
    return this.#dpop;
  }

  metadata(): Promise<Metadata> {
    this.#metadata ??= fetch("/.well-known/oauth-authorization-server").then(async (r) => {
      if (!r.ok) throw new Error(`metadata: HTTP ${r.status}`);
      return (await r.json()) as Metadata;
    });
    return this.#metadata;
  }

  /** The broker's public URL: what DPoP `htu` and token audiences use. */
  async publicUrl(): Promise<string> {
    try {
      return (await this.metadata()).issuer.replace(/\/$/, "");
    } catch {
      return location.origin;
    }
  }

  setToken(token: AccessToken | undefined): void {
    this.token = token;
    for (const listener of this.listeners) listener();
  }
}

export const session = new Session();
