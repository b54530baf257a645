// How the CLI names a broker: the \`--server\` URL as given on the command line.
import { InvalidArgumentError } from "commander";

/** Parses a `--server` value: an http(s) URL, kept without a trailing slash. */
export function parseServerUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError("expected a URL such as http://127.0.0.1:8080");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new InvalidArgumentError("expected an http:// or https:// URL");
  }
  return value.replace(/\/+$/, "");
}
