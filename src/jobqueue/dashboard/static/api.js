// The public HTTP API, and nothing else: every call the page makes goes through `request`,
// which adds the operator's key and turns error answers into `ApiError`s.

const KEY_STORAGE = "jobqueue.apiKey";

/** An answer other than 2xx: `status` and the server's own message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

/** The server refused the key (or wanted one): 401. */
export class Unauthorized extends ApiError {}

/** The key kept for this tab only (sessionStorage), or "" when none was given. */
export function storedKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

export function saveKey(key) {
  sessionStorage.setItem(KEY_STORAGE, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
}

function headersFor(body) {
  const headers = { Accept: "application/json" };
  const key = storedKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return headers;
}

async function errorOf(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && typeof body.message === "string") message = body.message;
  } catch {
    // Not the service's JSON error shape (a proxy's page, say): keep the status line.
  }
  const Kind = response.status === 401 ? Unauthorized : ApiError;
  return new Kind(response.status, message);
}

/** `method path` with an optional JSON body; the parsed answer, or null for 204. */
export async function request(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: headersFor(body),
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    credentials: "same-origin",
  });
  if (!response.ok) throw await errorOf(response);
  return response.status === 204 ? null : response.json();
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

const jobPath = (id) => `/api/jobs/${encodeURIComponent(id)}`;
const flowPath = (id) => `/api/flows/${encodeURIComponent(id)}`;

/** The endpoints the page uses, by what they do. */
export const api = {
  stats: () => request("GET", "/api/jobs/stats"),
  jobs: ({ status, type, limit, offset }) =>
    request("GET", `/api/jobs${query({ status, type, limit, offset })}`),
  job: (id) => request("GET", jobPath(id)),
  attempts: (id) => request("GET", `${jobPath(id)}/attempts`),
  retry: (id) => request("POST", `${jobPath(id)}/retry`),
  cancel: (id) => request("POST", `${jobPath(id)}/cancel`),
  remove: (id) => request("DELETE", jobPath(id)),
  flow: (id) => request("GET", flowPath(id)),
  cancelFlow: (id) => request("POST", `${flowPath(id)}/cancel`),
  deadLetters: (limit) => request("GET", `/api/dlq${query({ limit })}`),
  retryFailed: (type) => request("POST", "/api/jobs/retry-failed", type ? { type } : {}),
};
