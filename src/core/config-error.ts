// The error a bad configuration value stops start-up with: it names the
// variable and what is wrong with it (config.ts, tracing-config.ts).
export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(
    readonly variable: string,
    problem: string,
    options?: ErrorOptions,
  ) {
    super(`${variable}: ${problem}`, options);
  }
}
