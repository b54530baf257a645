// The errors an operation can return, for its page: those its declared
// policy implies (authentication, DPoP, grant, rate limits, bad input), and
// the reasons its domain's code raises, read from the source of the domain
// folder that serves it (src/<domain>/). The reasons are the closed set the
// domain code passes to DomainError and its helpers (src/core/errors/).
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { MethodDoc } from "../catalogue.js";

export interface ErrorDoc {
  readonly code: string;
  readonly reason: string;
  readonly when: string;
}

/** The proto package of a service → the src/ folder of the domain serving it. */
const domainFolders: Record<string, string> = {
  "aegis.agent.v1": "agents",
  "aegis.apikey.v1": "apikeys",
  "aegis.audit.v1": "audit",
  "aegis.credential.v1": "credentials",
  "aegis.device.v1": "device",
  "aegis.grant.v1": "grants",
  "aegis.lease.v1": "leases",
  "aegis.person.v1": "people",
  "aegis.principal.v1": "principals",
  "aegis.resourceserver.v1": "resource-servers",
  "aegis.role.v1": "roles",
  "aegis.token.v1": "tokens",
};

const raised = [
  /new DomainError\(\s*"([a-z_]+)",\s*"([A-Z][A-Z0-9_]+)"/g,
  /notFound\([^,()]+,\s*"([A-Z][A-Z0-9_]+)"/g,
  /permissionDenied\(\s*"([A-Z][A-Z0-9_]+)"/g,
];

/** Every reason raised in the .ts files of `folder`, with its code. */
export function reasonsIn(folder: string): ErrorDoc[] {
  const found = new Map<string, ErrorDoc>();
  let files: string[] = [];
  try {
    files = readdirSync(folder).filter((f) => f.endsWith(".ts"));
  } catch {
    return [];
  }
  for (const file of files) {
    const text = readFileSync(path.join(folder, file), "utf8");
    for (const match of text.matchAll(raised[0] as RegExp)) {
      found.set(match[2] as string, { code: match[1] as string, reason: match[2] as string, when: "" });
    }
    for (const match of text.matchAll(raised[1] as RegExp)) {
      found.set(match[1] as string, { code: "not_found", reason: match[1] as string, when: "" });
    }
    for (const match of text.matchAll(raised[2] as RegExp)) {
      found.set(match[1] as string, { code: "permission_denied", reason: match[1] as string, when: "" });
    }
  }
  return [...found.values()].sort((a, b) => a.reason.localeCompare(b.reason));
}

export function errorsOf(method: MethodDoc, srcDir: string): ErrorDoc[] {
  const { policy } = method;
  const errors: ErrorDoc[] = [
    {
      code: "invalid_argument",
      reason: "INVALID_ARGUMENT",
      when: "A field breaks its rules; field violations name each.",
    },
  ];
  if (policy.authorization !== "anonymous") {
    errors.push({
      code: "unauthenticated",
      reason: "UNAUTHENTICATED",
      when: "No credential, or one that is unknown, expired or revoked (the wire says no more).",
    });
  }
  if (policy.dpopRequired || policy.authorization !== "anonymous") {
    errors.push({
      code: "unauthenticated",
      reason: "INVALID_DPOP_PROOF",
      when: "A DPoP proof that fails a check (htm, htu, iat, jti replay, ath, key binding).",
    });
  }
  if (policy.dpopRequired) {
    errors.push({
      code: "permission_denied",
      reason: "DPOP_REQUIRED",
      when: "The call carried a bearer token: this operation needs a DPoP-bound token and a proof.",
    });
  }
  if (policy.authorization === "grant") {
    errors.push({
      code: "permission_denied",
      reason: "MISSING_GRANT",
      when: `The caller holds no grant for \`${policy.action}\` (metadata names the action).`,
    });
    errors.push({
      code: "permission_denied",
      reason: "TARGET_NOT_GRANTED",
      when: "A grant for the action exists, but its selector does not cover this target.",
    });
  }
  errors.push({
    code: "resource_exhausted",
    reason: "RATE_LIMITED",
    when: "Too many calls or failed attempts; RetryInfo and Retry-After say when to retry.",
  });
  const pkg = method.service.split(".").slice(0, -1).join(".");
  const folder = domainFolders[pkg];
  const seen = new Set(errors.map((e) => e.reason));
  if (folder) {
    for (const e of reasonsIn(path.join(srcDir, folder))) {
      if (!seen.has(e.reason)) errors.push({ ...e, when: "Raised by this service's domain." });
    }
  }
  return errors;
}
