// The structured logger. Secrets are never passed to it; redaction is the
// second line of defence for fields that could carry one by mistake.
import pino, { type DestinationStream, type Logger } from "pino";
import type { LogLevel } from "./config.js";

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "aegis" },
      redact: {
        paths: [
          "authorization",
          "*.authorization",
          "headers.authorization",
          "secret",
          "*.secret",
          "password",
          "*.password",
          "token",
          "*.token",
          "credential",
          "*.credential",
          // An HSM's user PIN (AEGIS_PKCS11_PIN), should a configuration object reach a log line.
          "pin",
          "*.pin",
          "*.*.pin",
        ],
        censor: "[redacted]",
      },
    },
    destination,
  );
}
