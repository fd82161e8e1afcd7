// The board's parts drawn from API answers: counts, the job table, the side lists.
// `open(id)` shows a job's detail; every row and item calls it when chosen.

import {
  STATUSES, chooseOnEnter, el, fill, prettyJson, relativeTime, shortId, statusBadge, timeNode, truncate,
} from "./dom.js";

const PREVIEW_CHARS = 60;

/** One card per status (the known ones first, in lifecycle order), and the total. */
export function renderCounts(node, stats) {
  const names = [...STATUSES, ...Object.keys(stats).filter((name) => !STATUSES.includes(name))];
  const total = names.reduce((sum, name) => sum + (stats[name] ?? 0), 0);
  const card = (name, value, className) =>
    el("div", { className: `count ${className}`, data: { status: name } },
      el("span", { className: "count-value", text: value.toLocaleString() }),
      el("span", { className: "count-label", text: name }));
  fill(node, ...names.map((name) => card(name, stats[name] ?? 0, `status-${name}`)),
    card("total", total, "count-total"));
}

function jobRow(job, open) {
  const row = el("tr", { data: { id: job.id, status: job.status } },
    el("td", {}, statusBadge(job.status)),
    el("td", { className: "type", text: job.type }),
    el("td", {}, shortId(job.id)),
    el("td", { className: "preview", text: truncate(JSON.stringify(job.payload), PREVIEW_CHARS) }),
    el("td", { className: "num", text: `${job.attempts}/${job.maxAttempts}` }),
    el("td", {}, timeNode(job.createdAt)));
  chooseOnEnter(row, () => open(job.id));
  return row;
}

/** The table's rows, or one row saying that nothing matches. */
export function renderJobRows(body, jobs, open) {
  if (jobs.length === 0) {
    const cell = el("td", { className: "empty", text: "No jobs match." });
    cell.colSpan = 6;
    fill(body, el("tr", {}, cell));
    return;
  }
  fill(body, ...jobs.map((job) => jobRow(job, open)));
}

function listItem(id, open, ...children) {
  const item = el("li", { className: "item", data: { id } }, ...children);
  chooseOnEnter(item, () => open(id));
  return item;
}

function itemHead(type, id, aside) {
  return el("div", { className: "item-head" },
    el("span", { className: "type", text: type }), shortId(id), el("span", { className: "spacer" }),
    aside);
}

/** `items` drawn by `draw`, "none" when empty, and a note when the list is cut at `limit`. */
export function renderList(node, items, limit, emptyText, draw) {
  if (items.length === 0) {
    fill(node, el("li", { className: "empty", text: emptyText }));
    return;
  }
  const more = items.length >= limit
    ? el("li", { className: "muted small", text: `Showing the newest ${limit}.` }) : null;
  fill(node, ...items.map(draw), more);
}

/** A running job: type, id, progress. */
export function runningItem(job, open) {
  const progress = job.progress === null ? null
    : el("progress", { max: 100, value: job.progress, title: `${job.progress}%` });
  const message = job.progressMessage
    ? el("div", { className: "muted small", text: job.progressMessage }) : null;
  const since = el("span", { className: "muted small", text: relativeTime(job.updatedAt) });
  return listItem(job.id, open, itemHead(job.type, job.id, since), progress, message);
}

/** A failed job: type, id, its last error. */
export function failedItem(job, open) {
  const when = el("span", { className: "muted small", text: relativeTime(job.updatedAt) });
  return listItem(job.id, open, itemHead(job.type, job.id, when),
    el("div", { className: "error small", text: truncate(job.lastError ?? "", 160) }));
}

/** A dead-letter entry: type, job id, why it failed, after how many attempts. */
export function deadLetterItem(entry, open) {
  const when = el("span", { className: "muted small", text: relativeTime(entry.failedAt) });
  return listItem(entry.jobId, open, itemHead(entry.type, entry.jobId, when),
    el("div", { className: "error small", text: truncate(entry.reason ?? "", 160) }),
    el("div", { className: "muted small",
      text: `${entry.attempts} attempts · payload ${truncate(prettyJson(entry.payload), 80)}` }));
}
