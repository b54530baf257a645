// Reading Prometheus exposition in tests: Debian's promtool checks it
// (test/support/ensure-promtool.sh installs it), and `sample` reads one value.
import { spawn } from "node:child_process";

/** Runs `promtool check metrics` on `text`: its exit code and what it said. */
export function promtool(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("promtool", ["check", "metrics"]);
    let output = "";
    child.stdout.on("data", (d) => {
      output += d;
    });
    child.stderr.on("data", (d) => {
      output += d;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
    child.stdin.end(text);
  });
}

/** The value of the sample `name{labels}` (labels in any order), 0 when absent. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = labelsOf(match[2] ?? "");
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(match[3]);
  }
  return 0;
}

export function labelsOf(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [, key = "", value = ""] of text.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
    labels[key] = value;
  }
  return labels;
}
