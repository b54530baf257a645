// `npm run bench:root-of-trust`: wraps and unwraps per second on the local
// root key and on a PKCS#11 token (a fresh SoftHSM2 token in a temporary
// directory), one call at a time and with 64 in flight, for 32-byte key
// material. Not part of `npm test`; needs Debian's softhsm2.
import { randomBytes } from "node:crypto";
import pino from "pino";
import type { RootOfTrust } from "../../src/core/root-of-trust.js";
import { openPkcs11RootOfTrust } from "../../src/crypto/pkcs11-root-of-trust.js";
import { localRootOfTrust, RootKey } from "../../src/crypto/root-key.js";
import { createSoftHsm } from "../support/softhsm.js";

const seconds = Number(process.env.AEGIS_BENCH_SECONDS ?? 3);
const material = randomBytes(32);

async function rate(operation: () => Promise<unknown>, inFlight: number): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  const loop = async () => {
    while (performance.now() < end) {
      await operation();
      done++;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: inFlight }, loop));
  return done / ((performance.now() - start) / 1000);
}

async function measure(name: string, rot: RootOfTrust): Promise<void> {
  const wrapped = await rot.wrap(material, "bench:key:v1");
  for (const inFlight of [1, 64]) {
    const wraps = await rate(() => rot.wrap(material, "bench:key:v1"), inFlight);
    const unwraps = await rate(() => rot.unwrap(wrapped, "bench:key:v1"), inFlight);
    console.log(
      `${name.padEnd(8)} in flight ${String(inFlight).padStart(2)}: wrap ${Math.round(wraps).toLocaleString("en").padStart(9)}/s  unwrap ${Math.round(unwraps).toLocaleString("en").padStart(9)}/s`,
    );
  }
}

const hsm = createSoftHsm();
try {
  const token = await hsm.token();
  await measure("local", localRootOfTrust(new RootKey(randomBytes(32))));
  const pkcs11 = await openPkcs11RootOfTrust(token.config(), pino({ level: "silent" }));
  await measure("pkcs11", pkcs11);
  await pkcs11.close();
} finally {
  hsm.remove();
}
