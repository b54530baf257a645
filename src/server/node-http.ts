// The request and response types of connect-node's handler (HTTP/1.1 or
// HTTP/2 compatibility API), which the package does not export by name.
import type { connectNodeAdapter } from "@connectrpc/connect-node";

export type NodeHandler = ReturnType<typeof connectNodeAdapter>;
export type NodeServerRequest = Parameters<NodeHandler>[0];
export type NodeServerResponse = Parameters<NodeHandler>[1];
