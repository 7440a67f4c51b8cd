// The admin API client: every call carries the officer's token as a bearer header (never a cookie, never in a URL).
// The token lives in this tab's sessionStorage only (gone when the tab closes; "Sign out" clears it).

const TOKEN_KEY = "ferry.console.token";

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message);
  }
}

export function getToken(): string {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? "";
  } catch {
    return memoryToken;
  }
}
let memoryToken = "";
export function setToken(token: string): void {
  memoryToken = token;
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // sessionStorage refused (a locked-down browser): the token stays in memory for this page only.
  }
}

async function call(method: string, path: string, body?: unknown, token = getToken()): Promise<Response> {
  const headers: Record<string, string> = { Authorization: `Bearer ${token}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
    referrerPolicy: "no-referrer",
  });
  if (!res.ok) {
    let code = "http_" + res.status;
    let message = res.statusText;
    try {
      const e = (await res.json()) as { error?: string; code?: string };
      if (e.code) code = e.code;
      if (e.error) message = e.error;
    } catch {
      // not the JSON error body
    }
    throw new ApiError(res.status, code, message);
  }
  return res;
}

export async function getJson<T>(path: string, token?: string): Promise<T> {
  return (await (await call("GET", path, undefined, token)).json()) as T;
}
export async function postJson<T>(path: string, body: unknown = {}): Promise<T> {
  return (await (await call("POST", path, body)).json()) as T;
}
export async function getBlob(path: string): Promise<{ blob: Blob; requestId: string }> {
  const res = await call("GET", path);
  return { blob: await res.blob(), requestId: res.headers.get("X-Ferry-Request-Id") ?? "" };
}

// A path segment for an id: any byte, percent-encoded (the collector decodes the raw segment, %2F included).
export const seg = (id: string) => encodeURIComponent(id);
export const query = (params: Record<string, string | number | undefined>) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? "?" + s : "";
};

// ---- the documents of the admin API (docs/PROTOCOL.md) ----
export type Role = "compliance" | "operator" | "analyst";
export interface WhoAmI {
  name: string;
  prefix: string;
  roles: Role[];
  insight: boolean;
}
export interface RightsRequest {
  id: string;
  kind: string;
  project: string;
  subject: string;
  state: string;
  source: string;
  receivedAt: string;
  dueAt: string;
  overdue: boolean;
  actedBy: string;
  actedAt: string | null;
  result: unknown;
}
export interface AuditEntry {
  seq: number;
  time: string;
  actor: string;
  role: string;
  action: string;
  subjectHash: string;
  result: string;
  detail: string;
  prevHash: string;
  hash: string;
}
export interface VerifyResult {
  ok: boolean;
  entries: number;
  firstBrokenSeq?: number;
  reason?: string;
}
export interface Identity {
  kind: string;
  id: string;
  source: string;
  linkedTo?: string;
  linkedAt?: string;
}
export interface Link {
  linkId: number;
  kind: string;
  from: string;
  to: string;
  source: string;
  state: string;
  followed: boolean;
  credential: string;
  keyId: string;
  viaMessageId: string;
  viaAnonymousId: string | null;
  assertedAt: string | null;
  linkedAt: string | null;
  confirmedBy: string | null;
  confirmedAt: string | null;
}
export interface SubjectProject {
  project: string;
  userId: string | null;
  identities: Identity[];
  links: Link[];
  eventCount: number;
  eventsByType: Record<string, number>;
  firstSeen: string | null;
  lastSeen: string | null;
  consent: { purpose: string; state: string; at: string }[];
  traits: Record<string, unknown>;
}
export interface Subject {
  subject: string;
  projects: SubjectProject[];
}
export interface EventItem {
  project: string;
  messageId: string;
  type: string;
  name: string | null;
  userId: string | null;
  anonymousId: string | null;
  purpose: string;
  timestamp: string;
  receivedAt: string;
  event: Record<string, unknown>;
}
export interface EventPage {
  subject: string;
  offset: number;
  limit: number;
  events: EventItem[];
  more: boolean;
}
export interface EraseReceipt {
  requestId: string;
  erased: Record<string, number>;
  idsSuppressed: number;
  projects: string[];
  completedAt: string;
}

// ---- appended for the request actions, restriction, registry and anchor pages (issue 14) ----
export async function putJson<T>(path: string, body: unknown): Promise<T> {
  return (await (await call("PUT", path, body)).json()) as T;
}
export interface Verification {
  method: string;
  reference: string;
  by?: string;
  at?: string;
}
export interface InForce {
  kind: string;
  purposes: "all" | string[];
  since: string;
  projects?: string[];
  ids?: string[];
}
// The members every request gained with issue 13 (docs/PROTOCOL.md "A register that tells the truth").
export interface RightsRequest {
  refusalReason?: string | null;
  verification?: Verification | null;
  delivered?: { at: string; by: string; events: number } | null;
  purposes?: "all" | string[] | null;
  inForce?: InForce[] | null;
  lifted?: { at: string; by: string; reason: string } | null;
  extension?: { reason: string; days: number; previousDue: string; by: string; at: string } | null;
}
export interface Delivery {
  seq: number;
  destination: string;
  state: string;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  nextAttemptAt: string | null;
  deliveredAt: string | null;
}
export interface VerifyResult {
  headSeq?: number;
  headHash?: string;
}
export interface ConsentRecord {
  messageId: string;
  purpose: string;
  state: string;
  previous: string | null;
  at: string;
  receivedAt: string;
  method: string | null;
  noticeId: string | null;
  noticeVersion: string | null;
  language: string | null;
  receiptId: string | null;
}
export interface ExportDoc {
  subject: string;
  projects: { project: string; consentHistory?: ConsentRecord[] }[];
}
export interface DryRunReceipt {
  dryRun: true;
  erased: Record<string, number>;
  idsSuppressed: number;
  projects: string[];
}
// Saves a blob as a file through a temporary object URL (the CSP allows no data: or inline script; blob: downloads
// need no navigation).
export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}
export const fileSafe = (id: string) => id.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 64) || "file";
