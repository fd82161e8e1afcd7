// Building the page from data. Every value reaches the DOM as text (textContent, attribute
// values), never as markup: a payload holding <script> or <img onerror=...> shows as it reads.

/** Every job status, in lifecycle order: a `waiting` job's parents have not all completed. */
export const STATUSES = ["waiting", "pending", "processing", "completed", "failed", "cancelled"];

// The properties `el` may set: none of them parses markup.
const PLAIN_PROPERTIES = new Set([
  "className", "title", "hidden", "disabled", "value", "max", "type", "tabIndex", "dateTime",
]);

/**
 * A new element: `props` sets `text` (as textContent), `data` (dataset entries) and the
 * properties above; `children` are nodes or strings (made text nodes).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (name === "text") node.textContent = String(value);
    else if (name === "data") Object.assign(node.dataset, value);
    else if (PLAIN_PROPERTIES.has(name)) node[name] = value;
    else throw new Error(`el() does not set ${name}`);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

/** `node` emptied, then given `children`. */
export function fill(node, ...children) {
  node.replaceChildren(...children.filter((child) => child !== null && child !== undefined));
}

export function byId(id) {
  const node = document.getElementById(id);
  if (node === null) throw new Error(`the page has no #${id}`);
  return node;
}

/** `node` runs `choose` when clicked, or on Enter or Space while it has the focus. */
export function chooseOnEnter(node, choose) {
  node.tabIndex = 0;
  node.addEventListener("click", choose);
  node.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      choose();
    }
  });
}

/** A coloured status label. */
export function statusBadge(status) {
  const known = STATUSES.includes(status) ? status : "unknown";
  return el("span", { className: `badge status-${known}`, text: status });
}

/** The first 8 characters of an id, the whole of it on hover. */
export function shortId(id) {
  const text = String(id);
  return el("code", { className: "id", text: text.slice(0, 8), title: text });
}

/** JSON indented by two spaces (for a payload or a result). */
export function prettyJson(value) {
  return JSON.stringify(value, null, 2);
}

/** `text` cut to `length` characters with an ellipsis. */
export function truncate(text, length) {
  const value = String(text);
  return value.length > length ? `${value.slice(0, length - 1)}…` : value;
}

const pad = (number, width = 2) => String(number).padStart(width, "0");

/** An ISO time as "YYYY-MM-DD HH:MM:SS" in this browser's time zone, or "—". */
export function formatTime(iso) {
  if (!iso) return "—";
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return String(iso);
  const day = `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())}`;
  return `${day} ${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}`;
}

/** "HH:MM" (or "HH:MM:SS") of a Date, 24-hour, local. */
export function clockOf(moment, withSeconds = false) {
  const minutes = `${pad(moment.getHours())}:${pad(moment.getMinutes())}`;
  return withSeconds ? `${minutes}:${pad(moment.getSeconds())}` : minutes;
}

/** A duration: "0.5 ms", "120 ms", "3.2 s". */
export function formatDuration(ms) {
  if (ms < 10) return `${Math.round(ms * 10) / 10} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${Math.round(ms / 100) / 10} s`;
}

/** "12 s ago", "in 3 min", from an ISO time. */
export function relativeTime(iso, now = Date.now()) {
  if (!iso) return "";
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  const size = Math.abs(seconds);
  if (size < 2) return "just now"; // also hides a second of skew between server and browser
  const amount = size < 90 ? `${size} s` : size < 5400 ? `${Math.round(size / 60)} min`
    : `${Math.round(size / 3600)} h`;
  return seconds < 0 ? `${amount} ago` : `in ${amount}`;
}

/** A time as a <time> element: local time shown, ISO on hover. */
export function timeNode(iso) {
  return el("time", { className: "time", text: formatTime(iso), title: iso || "", dateTime: iso || "" });
}
