// "Try it": sends the request in the editor with @connectrpc/connect-web
// (Connect JSON by default, gRPC-Web selectable) from this page, with the
// credential the person chose and, when asked or required, a DPoP proof
// signed by the page's non-extractable key. Shows the response, headers,
// timing, and an error's code, reason and field violations decoded from
// its google.rpc details. The protocol speaks with descriptors of the
// public surface only (the catalogue's descriptor set).
import {
  createFileRegistry,
  type DescMethodUnary,
  type DescService,
  type FileRegistry,
  fromBinary,
  fromJson,
  toJson,
} from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import type { Catalogue } from "../catalogue.js";
import { neededScope } from "./needed-scope.js";
import { session } from "./session.js";

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

let registry: Promise<{ registry: FileRegistry; catalogue: Catalogue }> | undefined;
export function loadCatalogue() {
  registry ??= fetch("/developer/catalogue.json").then(async (r) => {
    const catalogue = (await r.json()) as Catalogue;
    const bytes = Uint8Array.from(atob(catalogue.descriptorSet), (c) => c.charCodeAt(0));
    return { catalogue, registry: createFileRegistry(fromBinary(FileDescriptorSetSchema, bytes)) };
  });
  return registry;
}

export type Credential = { scheme: "Bearer" | "DPoP"; value: string } | undefined;

/** A transport for `protocol` that signs each call as asked. */
export async function transportFor(protocol: string, credential: Credential, attachDpop: boolean): Promise<Transport> {
  const publicUrl = await session.publicUrl();
  const dpop = attachDpop || credential?.scheme === "DPoP" ? await session.dpop() : undefined;
  const sign: Interceptor = (next) => async (req) => {
    if (credential) req.header.set("authorization", `${credential.scheme} ${credential.value}`);
    if (dpop) {
      const htu = `${publicUrl}${new URL(req.url).pathname}`;
      const ath = credential?.scheme === "DPoP" ? credential.value : undefined;
      req.header.set("dpop", await dpop.proof(req.requestMethod, htu, ath));
    }
    return next(req);
  };
  const baseUrl = location.origin;
  return protocol === "grpc-web"
    ? createGrpcWebTransport({ baseUrl, interceptors: [sign] })
    : createConnectTransport({ baseUrl, interceptors: [sign] });
}

export function methodOf(registry: FileRegistry, path: string): DescMethodUnary {
  const [, serviceName, methodName] = path.split("/");
  const service = registry.getService(serviceName ?? "") as DescService | undefined;
  const method = service?.methods.find((m) => m.name === methodName);
  if (method?.methodKind !== "unary") throw new Error(`unknown operation ${path}`);
  return method as DescMethodUnary;
}

const snake = (code: Code) => (Code[code] ?? "unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();

const headerText = (...all: (Headers | undefined)[]) => {
  const lines: string[] = [];
  for (const headers of all) {
    headers?.forEach((value, name) => {
      lines.push(`${name}: ${value}`);
    });
  }
  return lines.join("\n");
};

export interface DecodedError {
  readonly code: string;
  readonly message: string;
  readonly reason?: string;
  readonly metadata: Record<string, string>;
  readonly violations: { field: string; description: string }[];
}

export function decodeError(error: ConnectError, registry: FileRegistry): DecodedError {
  const infoDesc = registry.getMessage("google.rpc.ErrorInfo");
  const badDesc = registry.getMessage("google.rpc.BadRequest");
  const info = infoDesc
    ? (error.findDetails(infoDesc)[0] as { reason?: string; metadata?: Record<string, string> })
    : undefined;
  const bad = badDesc
    ? (error.findDetails(badDesc)[0] as { fieldViolations?: { field: string; description: string }[] } | undefined)
    : undefined;
  return {
    code: snake(error.code),
    message: error.rawMessage,
    ...(info?.reason ? { reason: info.reason } : {}),
    metadata: { ...(info?.metadata ?? {}) },
    violations: (bad?.fieldViolations ?? []).map((v) => ({ field: v.field, description: v.description })),
  };
}

function renderError(e: DecodedError): void {
  const box = $("result-error");
  box.replaceChildren();
  const dl = document.createElement("dl");
  dl.className = "error-details";
  const add = (term: string, value: string) => {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    dd.dataset.term = term.toLowerCase();
    dl.append(dt, dd);
  };
  add("Code", e.code);
  add("Reason", e.reason ?? "(none)");
  add("Message", e.message);
  for (const [k, v] of Object.entries(e.metadata)) add(`Metadata ${k}`, v);
  box.append(dl);
  if (e.violations.length > 0) {
    const table = document.createElement("table");
    table.className = "violations";
    table.innerHTML = `<caption>Field violations</caption><thead><tr><th scope="col">Field</th><th scope="col">Description</th></tr></thead>`;
    const body = document.createElement("tbody");
    for (const v of e.violations) {
      const row = body.insertRow();
      row.insertCell().textContent = v.field;
      row.insertCell().textContent = v.description;
    }
    table.append(body);
    box.append(table);
  }
}

function currentCredential(): Credential {
  const as = $<HTMLSelectElement>("send-as").value;
  if (as === "api-key" && session.apiKey) return { scheme: "Bearer", value: session.apiKey };
  if (as === "token" && session.token) return { scheme: session.token.type, value: session.token.value };
  return undefined;
}

function showToken(): void {
  const state = $("token-state");
  const token = session.token;
  state.textContent = token ? `${token.type} token, expires ${new Date(token.expiresAt).toLocaleTimeString()}` : "none";
  if (token) $<HTMLSelectElement>("send-as").value = "token";
}

async function send(path: string): Promise<void> {
  const status = $("result-status");
  const body = $("result-body");
  const headers = $("result-headers");
  $("result-error").replaceChildren();
  body.textContent = "";
  headers.textContent = "";
  const { registry } = await loadCatalogue();
  const method = methodOf(registry, path);
  let input: ReturnType<typeof fromJson>;
  try {
    input = fromJson(method.input, JSON.parse($<HTMLTextAreaElement>("request-json").value || "{}"), { registry });
  } catch (error) {
    status.textContent = `Not sent: the request is not valid JSON for ${method.input.name} (${String(error)})`;
    status.className = "status-error";
    return;
  }
  const transport = await transportFor(
    $<HTMLSelectElement>("protocol").value,
    currentCredential(),
    $<HTMLInputElement>("attach-dpop").checked,
  );
  status.textContent = "Sending…";
  status.className = "muted";
  const started = performance.now();
  try {
    const response = await transport.unary(method, undefined, 30_000, undefined, input);
    const ms = Math.round(performance.now() - started);
    status.textContent = `OK in ${ms} ms`;
    status.className = "status-ok";
    body.textContent = JSON.stringify(toJson(method.output, response.message, { registry }), null, 2);
    headers.textContent = headerText(response.header, response.trailer);
  } catch (thrown) {
    const ms = Math.round(performance.now() - started);
    const error = ConnectError.from(thrown);
    const decoded = decodeError(error, registry);
    status.textContent = `Error ${decoded.code}${decoded.reason ? ` (${decoded.reason})` : ""} in ${ms} ms`;
    status.className = "status-error";
    headers.textContent = headerText(error.metadata);
    renderError(decoded);
  }
}

async function mint(): Promise<void> {
  const status = $("result-status");
  if (!session.apiKey) {
    status.textContent = "Paste an API key first: the token is minted with it.";
    status.className = "status-error";
    return;
  }
  const { registry } = await loadCatalogue();
  const method = methodOf(registry, "/aegis.token.v1.TokenService/MintToken");
  const scopes = $<HTMLInputElement>("mint-scopes").value.split(/\s+/).filter(Boolean);
  const transport = await transportFor("connect", { scheme: "Bearer", value: session.apiKey }, true);
  try {
    const audience = await session.publicUrl();
    const response = await transport.unary(
      method,
      undefined,
      30_000,
      undefined,
      fromJson(method.input, { audience, scopes }, { registry }),
    );
    const minted = toJson(method.output, response.message, { registry }) as {
      accessToken?: string;
      tokenType?: string;
      expiresIn?: number;
    };
    session.setToken({
      value: minted.accessToken ?? "",
      type: minted.tokenType === "DPoP" ? "DPoP" : "Bearer",
      expiresAt: Date.now() + (minted.expiresIn ?? 0) * 1000,
    });
    status.textContent = `Minted a ${minted.tokenType} token for: ${scopes.join(" ")}`;
    status.className = "status-ok";
  } catch (thrown) {
    const decoded = decodeError(ConnectError.from(thrown), registry);
    status.textContent = `Minting failed: ${decoded.code}${decoded.reason ? ` (${decoded.reason})` : ""}`;
    status.className = "status-error";
    renderError(decoded);
  }
}

export function setUpTryIt(): void {
  const section = document.getElementById("try-it");
  if (!section) return;
  const path = section.dataset.path ?? "";
  const key = $<HTMLInputElement>("api-key");
  key.addEventListener("input", () => {
    session.apiKey = key.value.trim();
    if (session.apiKey) $<HTMLSelectElement>("send-as").value = "api-key";
  });
  session.listeners.add(showToken);
  showToken();
  $("send").addEventListener("click", () => void send(path));
  $("mint").addEventListener("click", () => void mint());
  followTarget(section);
  void session.dpop().then((k) => {
    $("dpop-key").textContent = `thumbprint ${k.jkt}`;
  });
}

/**
 * The Scopes field follows the request's target (the scope the call needs)
 * until the person edits the field; a request without a full target leaves
 * it empty rather than asking for a wildcard.
 */
function followTarget(section: HTMLElement): void {
  const policy = {
    action: section.dataset.action ?? "",
    authorization: section.dataset.authorization ?? "",
    targetField: section.dataset.targetField ?? "",
  };
  const scopes = $<HTMLInputElement>("mint-scopes");
  const request = $<HTMLTextAreaElement>("request-json");
  let edited = false;
  scopes.addEventListener("input", () => {
    edited = true;
  });
  request.addEventListener("input", () => {
    if (edited) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(request.value);
    } catch {
      return;
    }
    scopes.value = neededScope(policy, parsed) ?? "";
  });
}
