// Opens the root of trust the configuration names (AEGIS_ROOT_OF_TRUST): the
// local root key, or a PKCS#11 token. The PKCS#11 code, and with it the native
// pkcs11js addon, is loaded only when it is chosen.
import type { Logger } from "pino";
import type { Config } from "../core/config.js";
import type { KeyEncryptionProvider } from "../core/context.js";
import type { RootOfTrust } from "../core/root-of-trust.js";
import { localRootOfTrust } from "./root-key.js";

export async function openRootOfTrust(
  config: Config,
  rootKey: KeyEncryptionProvider,
  log: Logger,
): Promise<RootOfTrust> {
  if (config.rootOfTrust.kind === "local") {
    log.info({ rootOfTrust: "local" }, "root of trust: the local root key wraps key material");
    return localRootOfTrust(rootKey);
  }
  const { openPkcs11RootOfTrust } = await import("./pkcs11-root-of-trust.js");
  const opened = await openPkcs11RootOfTrust(config.rootOfTrust, log);
  log.info(
    { rootOfTrust: opened.kind, ...opened.description },
    "root of trust: a PKCS#11 token's AES key wraps key material",
  );
  return opened;
}
