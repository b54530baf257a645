// The request and response types of the Node HTTP servers (HTTP/1.1 or the
// HTTP/2 compatibility API) as connect-node's handler takes them (the package
// does not export them by name), and reading a bounded form body: what every
// HTTP route of every module needs.
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
