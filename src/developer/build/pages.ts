// The portal's pages as static HTML, rendered at install from the catalogue
// and the Markdown guides: they read without JavaScript; the script only
// adds the ⌘K palette, "Try it" and sign-in. Every value shown is escaped
// (proto comments go through markdown-it with raw HTML off).
import MarkdownIt from "markdown-it";
import {
  type Catalogue,
  type FieldDoc,
  type MessageDoc,
  type MethodDoc,
  operationPath,
  type ValueType,
} from "../catalogue.js";
import { neededScope } from "../site/needed-scope.js";
import type { ErrorDoc } from "./errors-of.js";

export const markdown = new MarkdownIt({ html: false, linkify: false, typographer: false });

/** Heading ids from their text, so guides can be linked to and searched by section. */
export const slug = (text: string): string =>
  text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "");

markdown.core.ruler.push("heading_ids", (state) => {
  const tokens = state.tokens;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    if (token?.type === "heading_open") token.attrSet("id", slug(tokens[i + 1]?.content ?? ""));
  }
  return true;
});

export const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);

const prose = (text: string): string => (text ? markdown.render(text) : "");

export interface Layout {
  readonly title: string;
  readonly path: string;
  readonly body: string;
  readonly catalogue: Catalogue;
}

/** A service's name, with its package when another service has the same name (gRPC reflection v1 and v1alpha). */
function serviceLabel(catalogue: Catalogue, service: Catalogue["services"][number]): string {
  const shared = catalogue.services.some((other) => other !== service && other.name === service.name);
  return shared ? `${service.name} (${service.typeName.slice(0, -service.name.length - 1)})` : service.name;
}

function sideNav(catalogue: Catalogue, current: string): string {
  const groups = catalogue.services.map((s) => {
    const items = s.methods
      .map((m) => {
        const href = operationPath(m);
        const here = href === current ? ' aria-current="page"' : "";
        return `<li><a href="${escapeHtml(href)}"${here}>${escapeHtml(m.name)}</a></li>`;
      })
      .join("");
    return `<li><details${s.methods.some((m) => operationPath(m) === current) ? " open" : ""}><summary>${escapeHtml(serviceLabel(catalogue, s))}</summary><ul>${items}</ul></details></li>`;
  });
  return `<nav class="side" aria-label="Operations"><h2 class="side-title">Operations</h2><ul>${groups.join("")}</ul></nav>`;
}

export function page({ title, path, body, catalogue }: Layout): string {
  const link = (href: string, text: string) =>
    `<a href="${href}"${href === path ? ' aria-current="page"' : ""}>${text}</a>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · Aegis developer portal</title>
<link rel="stylesheet" href="/developer/assets/portal.css">
<script type="module" src="/developer/assets/portal.js"></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<a class="brand" href="/developer">Aegis <span>developer portal</span></a>
<nav class="primary" aria-label="Portal">${link("/developer", "Home")}${link("/developer/security", "Security")}${link("/developer/patterns", "Patterns")}<a href="/developer/openapi.json">OpenAPI</a></nav>
<button type="button" class="search-open" id="search-open" aria-keyshortcuts="Control+K Meta+K">Search <kbd>Ctrl K</kbd></button>
<div class="session" id="session"><button type="button" id="sign-in">Sign in</button><span id="session-status" role="status"></span></div>
</header>
<div class="layout">
${sideNav(catalogue, path)}
<main id="main" tabindex="-1">
${body}
</main>
</div>
<dialog id="palette" aria-label="Search guides and operations">
<div class="palette-box">
<label for="palette-input" class="palette-label">Search guides and operations</label>
<input id="palette-input" type="text" role="combobox" aria-expanded="true" aria-controls="palette-results" aria-autocomplete="list" autocomplete="off" spellcheck="false" placeholder="e.g. redeem, DPoP, selector">
<div id="palette-results" role="listbox" aria-label="Results"></div>
<p class="palette-help">↑ ↓ to move · Enter to open · Esc to close</p>
</div>
</dialog>
</body>
</html>
`;
}

const typeName = (value: ValueType, catalogue: Catalogue): string => {
  if (value.kind === "scalar") return value.scalar;
  if (value.kind === "enum") return catalogue.enums[value.typeName]?.name ?? value.typeName;
  const m = catalogue.messages[value.typeName];
  return m?.wellKnown ? m.typeName : (m?.name ?? value.typeName);
};

function typeCell(field: FieldDoc, catalogue: Catalogue): string {
  const { value } = field;
  const name = escapeHtml(typeName(value, catalogue));
  const linked =
    value.kind === "scalar" || catalogue.messages[value.typeName]?.wellKnown
      ? `<code>${name}</code>`
      : `<a href="#${escapeHtml(value.kind)}-${escapeHtml(value.typeName)}"><code>${name}</code></a>`;
  if (field.label === "repeated") return `repeated ${linked}`;
  if (field.label === "map") return `map&lt;<code>${escapeHtml(field.mapKey ?? "")}</code>, ${linked}&gt;`;
  if (field.label === "optional") return `optional ${linked}`;
  return linked;
}

function rulesText(rules: unknown): string {
  if (rules === undefined) return "";
  return `<code class="rules">${escapeHtml(JSON.stringify(rules))}</code>`;
}

function messageTable(message: MessageDoc, catalogue: Catalogue): string {
  if (message.fields.length === 0) return `<p class="muted">No fields.</p>`;
  const rows = message.fields
    .map((f) => {
      const badges = f.behaviors.map((b) => `<span class="tag">${escapeHtml(b)}</span>`).join(" ");
      const oneof = f.oneof ? `<span class="tag">oneof ${escapeHtml(f.oneof)}</span>` : "";
      return `<tr><th scope="row"><code>${escapeHtml(f.jsonName)}</code>${f.jsonName !== f.name ? `<br><span class="muted">${escapeHtml(f.name)}</span>` : ""}</th><td>${typeCell(f, catalogue)}</td><td>${badges} ${oneof} ${rulesText(f.rules)}</td><td>${prose(f.description)}</td></tr>`;
    })
    .join("");
  return `<div class="table-wrap"><table><caption class="sr-only">Fields of ${escapeHtml(message.name)}</caption><thead><tr><th scope="col">Field (JSON)</th><th scope="col">Type</th><th scope="col">Behaviour and rules</th><th scope="col">Description</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

/** The message and every message and enum it reaches, each once, skipping well-known types. */
function reached(root: string, catalogue: Catalogue): { messages: MessageDoc[]; enums: string[] } {
  const messages: MessageDoc[] = [];
  const enums = new Set<string>();
  const seen = new Set<string>();
  const visit = (name: string) => {
    const m = catalogue.messages[name];
    if (!m || seen.has(name) || m.wellKnown) return;
    seen.add(name);
    messages.push(m);
    for (const f of m.fields) {
      if (f.value.kind === "message") visit(f.value.typeName);
      if (f.value.kind === "enum") enums.add(f.value.typeName);
    }
  };
  visit(root);
  return { messages, enums: [...enums] };
}

function schemaSection(title: string, id: string, root: string, catalogue: Catalogue): string {
  const { messages, enums } = reached(root, catalogue);
  const parts = messages.map(
    (m, i) =>
      `<section class="message" id="message-${escapeHtml(m.typeName)}" aria-labelledby="h-${id}-${i}"><h3 id="h-${id}-${i}"><code>${escapeHtml(m.name)}</code> <span class="muted">${escapeHtml(m.typeName)}</span></h3>${prose(m.description)}${messageTable(m, catalogue)}</section>`,
  );
  const enumParts = enums.map((name, i) => {
    const e = catalogue.enums[name];
    if (!e) return "";
    const rows = e.values
      .map(
        (v) =>
          `<tr><th scope="row"><code>${escapeHtml(v.name)}</code></th><td>${v.number}</td><td>${prose(v.description)}</td></tr>`,
      )
      .join("");
    return `<section class="enum" id="enum-${escapeHtml(e.typeName)}" aria-labelledby="h-${id}-e${i}"><h3 id="h-${id}-e${i}">enum <code>${escapeHtml(e.name)}</code></h3>${prose(e.description)}<div class="table-wrap"><table><thead><tr><th scope="col">Value</th><th scope="col">Number</th><th scope="col">Description</th></tr></thead><tbody>${rows}</tbody></table></div></section>`;
  });
  return `<section aria-labelledby="${id}"><h2 id="${id}">${title}</h2>${parts.join("")}${enumParts.join("")}</section>`;
}

export function badgesOf(method: MethodDoc): string[] {
  const p = method.policy;
  const badges = [`action ${p.action}`];
  badges.push(
    p.authorization === "anonymous"
      ? "anonymous"
      : p.authorization === "self"
        ? "any signed-in caller"
        : "grant required",
  );
  if (p.dpopRequired) badges.push("DPoP required");
  if (p.clientAuthentication) badges.push("OAuth client authentication");
  if (method.idempotency === "NO_SIDE_EFFECTS") badges.push("no side effects (GET)");
  if (method.idempotency === "IDEMPOTENT") badges.push("idempotent");
  if (p.auditEveryRefusal) badges.push("every refusal audited");
  if (method.streaming !== "unary") badges.push(method.streaming.replace("_", " "));
  return badges;
}

const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);
const origin = `<span class="origin">https://aegis.example.com</span>`;

function snippets(method: MethodDoc): string {
  const body = JSON.stringify(method.example);
  const auth =
    method.policy.authorization === "anonymous"
      ? ""
      : method.policy.dpopRequired
        ? ` \\\n  -H "Authorization: DPoP $AEGIS_TOKEN" \\\n  -H "DPoP: $DPOP_PROOF"`
        : ` \\\n  -H "Authorization: Bearer $AEGIS_TOKEN"`;
  const bufCurl = `buf curl --protocol connect${auth.replace(/-H/g, "-H")} \\\n  --data '${escapeHtml(body)}' \\\n  ${origin}${escapeHtml(method.path)}`;
  const curlPost = `curl -X POST ${origin}${escapeHtml(method.path)} \\\n  -H "Content-Type: application/json"${auth} \\\n  --data '${escapeHtml(body)}'`;
  const curlGet =
    method.idempotency === "NO_SIDE_EFFECTS"
      ? `\n\n# side-effect free: also as a Connect GET\ncurl -G ${origin}${escapeHtml(method.path)}${auth} \\\n  --data-urlencode 'encoding=json' --data-urlencode 'message=${escapeHtml(body)}'`
      : "";
  const service = method.service.split(".").pop() ?? "";
  const pkgPath = method.service.split(".").slice(0, -1).join("/");
  const protoFile = pkgPath.split("/").slice(-2, -1)[0] ?? "";
  const ts = `import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { ${escapeHtml(service)} } from "./gen/${escapeHtml(pkgPath)}/${escapeHtml(protoFile)}_pb.js";

const transport = createConnectTransport({
  baseUrl: "${origin}",
  interceptors: [(next) => async (req) => {
    req.header.set("Authorization", \`Bearer \${token}\`);${method.policy.dpopRequired ? `\n    // DPoP-bound token: "DPoP \${token}" and a fresh proof per call (RFC 9449)\n    req.header.set("DPoP", await proof(req.requestMethod, req.url, token));` : ""}
    return next(req);
  }],
});
const client = createClient(${escapeHtml(service)}, transport);
const response = await client.${escapeHtml(lowerFirst(method.name))}(${escapeHtml(JSON.stringify(method.example, null, 2))});`;
  const block = (id: string, label: string, code: string) =>
    `<section class="snippet" aria-labelledby="${id}"><h3 id="${id}">${label}</h3><pre tabindex="0"><code>${code}</code></pre></section>`;
  return `<section aria-labelledby="snippets"><h2 id="snippets">Call it</h2>${block("s-buf", "buf curl", bufCurl)}${block("s-curl", "curl", curlPost + curlGet)}${block("s-ts", "TypeScript (connect-web)", ts)}</section>`;
}

function errorsTable(errors: readonly ErrorDoc[]): string {
  const rows = errors
    .map(
      (e) =>
        `<tr><td><code>${escapeHtml(e.code)}</code></td><th scope="row"><code>${escapeHtml(e.reason)}</code></th><td>${prose(e.when)}</td></tr>`,
    )
    .join("");
  return `<section aria-labelledby="errors"><h2 id="errors">Errors and reasons</h2><p>Every error carries a <code>google.rpc.ErrorInfo</code> with the reason (domain <code>aegis.broker</code>); bad input adds a <code>BadRequest</code> with one violation per field.</p><div class="table-wrap"><table><thead><tr><th scope="col">Code</th><th scope="col">Reason</th><th scope="col">When</th></tr></thead><tbody>${rows}</tbody></table></div></section>`;
}

/**
 * The scopes "Try it" starts with (for minting and for signing in): the
 * scope the example request needs (neededScope: the action, with the
 * selector of the request's target for an action on a target); none when
 * any signed-in caller may call it (`self`) or anyone may (`anonymous`),
 * since such an action is no grantable scope and asking for it is refused
 * (`invalid_scope` at the authorization endpoint). The page follows the
 * request as it is edited.
 */
export function neededScopes(method: MethodDoc): string {
  return neededScope(method.policy, method.example) ?? "";
}

function tryIt(method: MethodDoc): string {
  if (method.streaming !== "unary") {
    return `<section aria-labelledby="try"><h2 id="try">Try it</h2><p>Streaming operations are not tried from the portal; use <code>buf curl</code>.</p></section>`;
  }
  return `<section class="try" aria-labelledby="try" id="try-it" data-path="${escapeHtml(method.path)}" data-action="${escapeHtml(method.policy.action)}" data-authorization="${escapeHtml(method.policy.authorization)}" data-target-field="${escapeHtml(method.policy.targetField)}">
<h2 id="try">Try it</h2>
<fieldset class="credentials"><legend>Credential (kept in this page's memory only)</legend>
<label for="api-key">API key or user API token</label>
<input id="api-key" type="password" autocomplete="off" spellcheck="false">
<label for="send-as">Send as</label>
<select id="send-as"><option value="none">No credential</option><option value="api-key">API key (Bearer)</option><option value="token">Access token</option></select>
<p class="token-line">Access token: <output id="token-state">none</output></p>
<label for="mint-scopes">Scopes (space separated)</label>
<input id="mint-scopes" type="text" autocomplete="off" spellcheck="false" aria-describedby="scopes-hint" value="${escapeHtml(neededScopes(method))}">
<p class="muted" id="scopes-hint">Asked for by "Sign in" and by minting; follows the request's target until edited.</p>
<details class="mint"><summary>Get a DPoP-bound token with the API key</summary>
<button type="button" id="mint">Mint DPoP-bound token</button>
</details>
<p class="muted">DPoP key: <output id="dpop-key">not yet created</output> (ES256, non-extractable, made in this page).</p>
</fieldset>
<div class="request">
<label for="request-json">Request (JSON)</label>
<textarea id="request-json" rows="${Math.min(Math.max(JSON.stringify(method.example, null, 2).split("\n").length + 1, 4), 18)}" spellcheck="false">${escapeHtml(JSON.stringify(method.example, null, 2))}</textarea>
<div class="controls">
<label for="protocol">Protocol</label>
<select id="protocol"><option value="connect">Connect (JSON)</option><option value="grpc-web">gRPC-Web (binary)</option></select>
<label class="check"><input type="checkbox" id="attach-dpop"${method.policy.dpopRequired ? " checked" : ""}> Attach a DPoP proof</label>
<button type="button" id="send" class="primary-button">Send</button>
</div>
</div>
<div class="result" id="result" aria-live="polite">
<h3 id="result-title">Response</h3>
<p id="result-status" class="muted">Not sent yet.</p>
<pre id="result-body" tabindex="0" aria-labelledby="result-title"></pre>
<div id="result-error"></div>
<h4>Headers</h4>
<pre id="result-headers" tabindex="0" aria-label="Response headers"></pre>
</div>
</section>`;
}

export function operationBody(method: MethodDoc, catalogue: Catalogue, errors: readonly ErrorDoc[]): string {
  const service = catalogue.services.find((s) => s.typeName === method.service);
  const badges = badgesOf(method)
    .map((b) => `<li class="badge${b === "DPoP required" ? " badge-dpop" : ""}">${escapeHtml(b)}</li>`)
    .join("");
  return `<p class="crumbs"><a href="/developer">Developer</a> / <span>${escapeHtml(service?.name ?? method.service)}</span></p>
<h1>${escapeHtml(method.name)}</h1>
<p class="path"><code>POST ${escapeHtml(method.path)}</code></p>
<ul class="badges" aria-label="Policy">${badges}</ul>
${prose(method.description)}
${tryIt(method)}
<section aria-labelledby="example"><h2 id="example">Example request</h2><pre tabindex="0"><code>${escapeHtml(JSON.stringify(method.example, null, 2))}</code></pre></section>
${schemaSection("Request", "request", method.input, catalogue)}
${schemaSection("Response", "response", method.output, catalogue)}
${snippets(method)}
${errorsTable(errors)}`;
}

export function homeBody(catalogue: Catalogue, guide: string): string {
  const first = catalogue.services[0]?.methods[0];
  const list = catalogue.services
    .map(
      (s) =>
        `<li><h3>${escapeHtml(serviceLabel(catalogue, s))}</h3>${prose(s.description.split("\n\n")[0] ?? "")}<ul class="ops">${s.methods.map((m) => `<li><a href="${escapeHtml(operationPath(m))}">${escapeHtml(m.name)}</a></li>`).join("")}</ul></li>`,
    )
    .join("");
  return `<section class="hero" aria-labelledby="title">
<h1 id="title">Build on Aegis</h1>
<p>The public API of the Aegis credential broker: short-lived, narrowly scoped access for agents and the people who run them, over Connect, gRPC and gRPC-Web.</p>
<p class="actions"><a class="primary-button" href="#endpoints">Explore endpoints</a> ${first ? `<a class="secondary-button" href="${escapeHtml(operationPath(first))}">Open first endpoint</a>` : ""} <a class="secondary-button" href="/developer/openapi.json">OpenAPI 3.1</a></p>
</section>
${guide}
<section aria-labelledby="endpoints"><h2 id="endpoints">Endpoints</h2><ul class="services">${list}</ul></section>`;
}

export function guideBody(markdownText: string): string {
  return `<article class="guide">${markdown.render(markdownText)}</article>`;
}

export function callbackBody(): string {
  return `<h1>Signing in…</h1><p id="callback-status" role="status">Finishing the sign-in in the portal window.</p><p><a href="/developer">Back to the portal</a></p>`;
}
