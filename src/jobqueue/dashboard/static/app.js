// The dashboard: polls the public API as the Node service's README recommends (counts and
// running jobs every 3-5 s, failed jobs every 10-30 s), only while the tab is visible, and asks
// for an API key when the server wants one. Nothing shows until the server has answered.

import { ApiError, Unauthorized, api, forgetKey, saveKey, storedKey } from "./api.js";
import { JobDetail } from "./detail.js";
import { confirmAction, toast } from "./dialogs.js";
import { byId, clockOf, el, fill } from "./dom.js";
import { Poller } from "./poller.js";
import { RateTracker, drawRates } from "./rates.js";
import {
  deadLetterItem, failedItem, renderCounts, renderJobRows, renderList, runningItem,
} from "./views.js";

const FAST_MS = 4000; // counts, running jobs, the table, an open job
const SLOW_MS = 15000; // failed jobs and the dead-letter queue
const SIDE_LIMIT = 10;
const TYPE_TYPING_MS = 300;
const COUNT_LIMIT = 500;

const state = {
  filter: { status: "", type: "", limit: 50, offset: 0 },
  stats: null,
  shownRows: 0,
  rates: new RateTracker(),
  unlocked: true, // false while the key prompt is up
};

const poller = new Poller(handlePollError);
const detail = new JobDetail({ onChange: refreshAll, onError: handleActionError });

function refreshAll() {
  poller.runNow();
}

// --- what the board shows --------------------------------------------------------------

async function pollStats() {
  const stats = await api.stats();
  state.stats = stats;
  state.rates.sample(stats);
  renderCounts(byId("counts"), stats);
  drawRates(byId("rate-chart"), state.rates.series());
  const { completed, failed } = state.rates.totals;
  const since = clockOf(new Date(state.rates.openedAt), true);
  byId("rate-totals").textContent = `+${completed} completed, +${failed} failed since ${since}`;
  byId("retry-all").disabled = !(stats.failed > 0);
  updatePageInfo();
  showLive();
}

async function pollJobs() {
  const asked = { ...state.filter };
  const jobs = await api.jobs(asked);
  if (JSON.stringify(asked) !== JSON.stringify(state.filter)) return; // a newer ask is coming
  state.shownRows = jobs.length;
  renderJobRows(byId("job-rows"), jobs, (id) => detail.open(id));
  updatePageInfo();
}

async function pollRunning() {
  const jobs = await api.jobs({ status: "processing", limit: SIDE_LIMIT });
  renderList(byId("running"), jobs, SIDE_LIMIT, "Nothing running.",
    (job) => runningItem(job, (id) => detail.open(id)));
}

async function pollFailed() {
  const jobs = await api.jobs({ status: "failed", limit: SIDE_LIMIT });
  renderList(byId("failed"), jobs, SIDE_LIMIT, "No failed jobs.",
    (job) => failedItem(job, (id) => detail.open(id)));
}

async function pollDeadLetters() {
  const entries = await api.deadLetters(SIDE_LIMIT);
  renderList(byId("dlq"), entries, SIDE_LIMIT, "The dead-letter queue is empty.",
    (entry) => deadLetterItem(entry, (id) => detail.open(id)));
}

function knownTotal() {
  const { stats, filter } = state;
  if (stats === null || filter.type) return null;
  if (filter.status) return stats[filter.status] ?? null;
  return Object.values(stats).reduce((sum, count) => sum + count, 0);
}

function updatePageInfo() {
  const { offset, limit } = state.filter;
  const total = knownTotal();
  const range = state.shownRows === 0 ? "none" : `${offset + 1}–${offset + state.shownRows}`;
  byId("page-info").textContent = total === null ? range : `${range} of ${total}`;
  byId("page-prev").disabled = offset === 0;
  byId("page-next").disabled = state.shownRows < limit;
}

// --- connection, errors and the key ------------------------------------------------------

function showLive() {
  byId("board").hidden = false;
  byId("notice").hidden = true;
  byId("connection").textContent = "● live";
  byId("connection").className = "connection live";
  byId("updated").textContent = `Updated ${clockOf(new Date(), true)}`;
  byId("forget-key").hidden = !storedKey();
}

function showTrouble(message) {
  const notice = byId("notice");
  notice.textContent = `${message} Trying again every ${FAST_MS / 1000} s.`;
  notice.hidden = false;
  byId("connection").textContent = "● no answer";
  byId("connection").className = "connection down";
}

function clearBoard() {
  for (const id of ["counts", "job-rows", "running", "failed", "dlq", "rate-chart"]) fill(byId(id));
  for (const id of ["rate-totals", "updated", "page-info", "connection"]) {
    byId(id).textContent = "";
  }
  byId("board").hidden = true;
  byId("notice").hidden = true;
  state.stats = null;
}

/** Hide every value and ask for a key; `message` says why (null: first time asked). */
function askForKey(message) {
  state.unlocked = false;
  poller.stop();
  state.rates.pause();
  detail.close();
  clearBoard();
  forgetKey();
  byId("forget-key").hidden = true;
  byId("key-message").textContent = message ?? "";
  byId("key-message").hidden = !message;
  byId("key-prompt").hidden = false;
  byId("key-input").value = "";
  byId("key-input").focus();
}

function handleUnauthorized() {
  if (!state.unlocked) return;
  askForKey(storedKey()
    ? "The server refused that key (401). Check it and enter it again."
    : null);
}

function handlePollError(error) {
  if (error instanceof Unauthorized) handleUnauthorized();
  else if (error instanceof ApiError) showTrouble(`The server answered ${error.status}: ${error.message}.`);
  else showTrouble("Cannot reach the server.");
}

function handleActionError(error) {
  if (error instanceof Unauthorized) handleUnauthorized();
  else if (error instanceof ApiError) toast(error.message, "error");
  else toast("Cannot reach the server: nothing was changed.", "error");
}

function unlock(key) {
  saveKey(key);
  byId("key-prompt").hidden = true;
  state.unlocked = true;
  if (document.visibilityState === "visible") poller.start();
}

// --- actions and filters -------------------------------------------------------------------

async function failedCount(type) {
  if (!type) return String((await api.stats()).failed);
  const jobs = await api.jobs({ status: "failed", type, limit: COUNT_LIMIT });
  return jobs.length >= COUNT_LIMIT ? `${COUNT_LIMIT} or more` : String(jobs.length);
}

async function retryAllFailed() {
  const type = state.filter.type;
  const count = await failedCount(type);
  const which = type ? `of type “${type}” (the table's type filter)` : "of every type";
  if (count === "0") {
    toast(`No failed jobs ${which} to retry.`);
    return;
  }
  const agreed = await confirmAction({
    title: type ? `Retry every failed ${type} job?` : "Retry every failed job?",
    lines: [
      el("p", {}, el("strong", { text: `${count} failed job(s)` }), ` ${which} go back to `
        + "pending with their attempts reset to 0, and run again."),
      "The number is from just now: a job that fails before you confirm is retried too. "
        + "Dead-letter entries stay as a record.",
    ],
    confirmLabel: `Retry ${count} failed job(s)`,
  });
  if (!agreed) return;
  const { retried } = await api.retryFailed(type);
  toast(`${retried} failed job(s) sent back to pending.`);
  refreshAll();
}

function setFilter(changes) {
  Object.assign(state.filter, changes);
  poller.runNow("jobs");
}

function wireFilters() {
  byId("filter-status").addEventListener("change", (event) =>
    setFilter({ status: event.target.value, offset: 0 }));
  byId("page-size").addEventListener("change", (event) =>
    setFilter({ limit: Number(event.target.value), offset: 0 }));
  let typing = null;
  byId("filter-type").addEventListener("input", (event) => {
    clearTimeout(typing);
    typing = setTimeout(() => setFilter({ type: event.target.value.trim(), offset: 0 }),
      TYPE_TYPING_MS);
  });
  byId("page-prev").addEventListener("click", () =>
    setFilter({ offset: Math.max(0, state.filter.offset - state.filter.limit) }));
  byId("page-next").addEventListener("click", () =>
    setFilter({ offset: state.filter.offset + state.filter.limit }));
}

function wireKeyPrompt() {
  byId("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = byId("key-input").value.trim();
    if (key) unlock(key);
  });
  byId("forget-key").addEventListener("click", () => askForKey(null));
}

function onVisibilityChange() {
  if (document.visibilityState === "hidden") {
    poller.stop();
    state.rates.pause(); // the hidden stretch is not spread over the minute we come back in
  } else if (state.unlocked) {
    poller.start();
  }
}

function main() {
  for (const node of document.querySelectorAll("[data-every]")) {
    const ms = node.dataset.every === "slow" ? SLOW_MS : FAST_MS;
    node.textContent = `every ${ms / 1000} s`;
  }
  const tableInterval = () => (state.filter.status === "failed" ? SLOW_MS : FAST_MS);
  poller.add("stats", () => FAST_MS, pollStats);
  poller.add("jobs", tableInterval, pollJobs);
  poller.add("running", () => FAST_MS, pollRunning);
  poller.add("failed", () => SLOW_MS, pollFailed);
  poller.add("dlq", () => SLOW_MS, pollDeadLetters);
  poller.add("detail", () => FAST_MS, () => detail.refresh());
  wireFilters();
  wireKeyPrompt();
  byId("retry-all").addEventListener("click", () => retryAllFailed().catch(handleActionError));
  document.addEventListener("visibilitychange", onVisibilityChange);
  if (document.visibilityState === "visible") poller.start();
}

main();
