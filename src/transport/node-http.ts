// The request and response types of connect-node's handler (HTTP/1.1 or
// HTTP/2 compatibility API), which the package does not export by name.
import type { connectNodeAdapter } from "@connectrpc/connect-node";

export type NodeHandler = ReturnType<typeof connectNodeAdapter>;
export type NodeServerRequest = Parameters<NodeHandler>[0];
export type NodeServerResponse = Parameters<NodeHandler>[1];

/** Reads a form-encoded body of at most `maxBytes`; undefined when it is larger (stops reading there). */
export async function readForm(req: NodeServerRequest, maxBytes: number): Promise<URLSearchParams | undefined> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) return undefined;
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}
