// Opens the root of trust the configuration names (AEGIS_ROOT_OF_TRUST): the
// local root key, or a PKCS#11 token. The PKCS#11 code, and with it the native
// pkcs11js addon, is loaded only when it is chosen (or `aegis hsm init-key` runs).
import type { Logger } from "pino";
import { type Config, ConfigError } from "../core/config.js";
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

/** `aegis hsm init-key`: creates the configured token's AES key unless it has one; never used by serve. */
export async function initPkcs11Key(config: Config): Promise<{ created: boolean; hsmToken: string; keyLabel: string }> {
  if (config.rootOfTrust.kind !== "pkcs11") {
    throw new ConfigError(
      "AEGIS_ROOT_OF_TRUST",
      "must be pkcs11 (with the AEGIS_PKCS11_* variables) to create an HSM key",
    );
  }
  const { createPkcs11Key } = await import("./pkcs11-root-of-trust.js");
  return { ...(await createPkcs11Key(config.rootOfTrust)), keyLabel: config.rootOfTrust.keyLabel };
}
