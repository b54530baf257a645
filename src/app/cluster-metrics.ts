// One scrape for the whole broker when it runs as several worker processes
// (AEGIS_WORKERS): whichever worker the scrape reaches asks the primary,
// which gathers every worker's registry with prom-client's
// AggregatorRegistry (counters and histograms summed, gauges as each metric
// declares) and answers with one exposition. Without it a scrape would see
// one worker's counts, at random.
import cluster from "node:cluster";
import { AggregatorRegistry, type Registry } from "prom-client";

/** A worker asking the primary for the whole broker's metrics, and the answer. */
export type MetricsMessage =
  | { readonly aegis: "metrics"; readonly id: number }
  | { readonly aegis: "metrics"; readonly id: number; readonly body?: string; readonly error?: string };

const isMetricsMessage = (message: unknown): message is MetricsMessage =>
  typeof message === "object" && message !== null && (message as { aegis?: unknown }).aegis === "metrics";

/** In the primary: answers each worker's request with the metrics of all workers. */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on("message", (worker, message: unknown) => {
    if (!isMetricsMessage(message) || "body" in message || "error" in message) return;
    const reply = (answer: MetricsMessage) => {
      if (worker.isConnected()) worker.send(answer);
    };
    aggregator.clusterMetrics().then(
      (body) => reply({ aegis: "metrics", id: message.id, body }),
      (error: Error) => reply({ aegis: "metrics", id: message.id, error: error.message }),
    );
  });
}

/**
 * In a worker: lets the primary collect `registry`, and returns what a
 * scrape should answer, the whole broker's metrics, asked of the primary.
 */
export function clusterExposition(
  registry: Registry,
  timeoutMs = 5_000,
): () => Promise<{ contentType: string; body: string }> {
  AggregatorRegistry.setRegistries([registry]);
  new AggregatorRegistry(); // answers the primary's collection requests from now on
  const pending = new Map<number, (answer: MetricsMessage) => void>();
  let next = 0;
  process.on("message", (message: unknown) => {
    if (isMetricsMessage(message)) pending.get(message.id)?.(message);
  });
  return () =>
    new Promise((resolve, reject) => {
      const id = ++next;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error("the broker's primary process did not send the workers' metrics in time"));
      }, timeoutMs);
      pending.set(id, (answer) => {
        pending.delete(id);
        clearTimeout(timer);
        if ("body" in answer && answer.body !== undefined)
          resolve({ contentType: registry.contentType, body: answer.body });
        else
          reject(
            new Error(`the workers' metrics could not be gathered: ${"error" in answer ? answer.error : "no answer"}`),
          );
      });
      process.send?.({ aegis: "metrics", id } satisfies MetricsMessage);
    });
}
