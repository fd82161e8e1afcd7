// One job in a dialog: every field, its parents and flow, its attempts, and the actions its
// status allows (retry a failed job, cancel a waiting, pending or running one, delete any, cancel
// its active flow; each after a confirmation).

import { ApiError, api } from "./api.js";
import { confirmAction, toast } from "./dialogs.js";
import {
  byId, el, fill, formatDuration, prettyJson, relativeTime, shortId, statusBadge, timeNode,
} from "./dom.js";
import { cancelFlowLines, flowSection, parentFacts } from "./flow.js";

const CANCELLABLE = ["waiting", "pending", "processing"];

function fact(label, ...value) {
  return [el("dt", { text: label }), el("dd", {}, ...value)];
}

function progressOf(job) {
  if (job.progress === null) return [el("span", { className: "muted", text: "not reported" })];
  return [el("progress", { max: 100, value: job.progress }), ` ${job.progress}%`,
    job.progressMessage ? el("span", { className: "muted", text: ` ${job.progressMessage}` }) : null];
}

function nextRunOf(job) {
  if (!job.nextRunAt) return [el("span", { className: "muted", text: "—" })];
  return [timeNode(job.nextRunAt), el("span", { className: "muted",
    text: ` (${relativeTime(job.nextRunAt)})` })];
}

function facts(job) {
  return el("dl", { className: "facts" },
    ...fact("Status", statusBadge(job.status)),
    ...fact("Attempts", `${job.attempts} of ${job.maxAttempts}`),
    ...fact("Priority", String(job.priority)),
    ...fact("Progress", ...progressOf(job)),
    ...fact("Created", timeNode(job.createdAt)),
    ...fact("Updated", timeNode(job.updatedAt)),
    ...fact("Next run", ...nextRunOf(job)),
    ...parentFacts(job).flatMap(([label, text]) => fact(label, text)));
}

function block(title, text, className = "") {
  return el("section", { className: "block" }, el("h3", { text: title }),
    el("pre", { className, text }));
}

function attemptRow(attempt) {
  return el("tr", {},
    el("td", { className: "num", text: String(attempt.number) }),
    el("td", {}, el("span", { className: `badge outcome-${attempt.outcome}`, text: attempt.outcome })),
    el("td", { className: "small", text: attempt.worker }),
    el("td", {}, timeNode(attempt.startedAt)),
    el("td", { className: "num nowrap", text: formatDuration(attempt.durationMs) }),
    el("td", { className: "error small", text: attempt.error ?? "" }));
}

function attemptsTable(attempts) {
  const head = el("tr", {}, ...["#", "Outcome", "Worker", "Started", "Took", "Error"]
    .map((name) => el("th", { text: name })));
  const rows = attempts.length === 0
    ? [el("tr", {}, el("td", { className: "empty", text: "No attempt has finished yet." }))]
    : attempts.map(attemptRow);
  return el("section", { className: "block" }, el("h3", { text: "Attempts" }),
    el("table", { className: "attempts" }, el("thead", {}, head), el("tbody", {}, ...rows)));
}

/** The detail dialog; `onChange` runs after an action changed a job, `onError` gets failures. */
export class JobDetail {
  constructor({ onChange, onError }) {
    this.onChange = onChange;
    this.onError = onError;
    this.id = null;
    this.job = null;
    this.flow = null;
    this.dialog = byId("detail");
    this.buttons = { retry: byId("action-retry"), cancel: byId("action-cancel"),
      remove: byId("action-delete") };
    byId("detail-close").addEventListener("click", () => this.close());
    this.dialog.addEventListener("close", () => {
      this.id = null;
      this.job = null;
      this.flow = null;
    });
    this.buttons.retry.addEventListener("click", () => this.act(() => this.retry()));
    this.buttons.cancel.addEventListener("click", () => this.act(() => this.cancel()));
    this.buttons.remove.addEventListener("click", () => this.act(() => this.remove()));
  }

  /** Show job `id` (fetched now, then at every refresh while open). */
  open(id) {
    this.id = id;
    this.job = null;
    this.flow = null;
    byId("detail-title").textContent = "Job";
    fill(byId("detail-body"), el("p", { className: "muted", text: "Loading…" }));
    this.showButtons(null);
    if (!this.dialog.open) this.dialog.showModal();
    this.refresh().catch((error) => this.onError(error));
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  /** Fetch the open job, its attempts and its flow again (nothing when closed). */
  async refresh() {
    const id = this.id;
    if (id === null) return;
    let job;
    let attempts;
    let flow;
    try {
      [job, attempts] = await Promise.all([api.job(id), api.attempts(id)]);
      flow = job.flowId ? await api.flow(job.flowId) : null;
    } catch (error) {
      if (this.id === id && error instanceof ApiError && error.status === 404) this.showGone(id);
      else throw error;
      return;
    }
    if (this.id === id) this.render(job, attempts, flow);
  }

  render(job, attempts, flow) {
    this.job = job;
    this.flow = flow;
    fill(byId("detail-title"), el("span", { text: job.type }), " ", statusBadge(job.status));
    const parts = [el("p", { className: "muted" }, "Id ", el("code", { text: job.id }))];
    parts.push(facts(job));
    if (job.lastError) parts.push(block("Last error", job.lastError, "error"));
    parts.push(block("Payload", prettyJson(job.payload)));
    if (job.result !== null || job.status === "completed") {
      parts.push(block("Result", prettyJson(job.result)));
    }
    if (flow) {
      parts.push(flowSection(flow, job.id, { open: (id) => this.open(id),
        cancel: () => this.act(() => this.cancelFlow()) }));
    }
    parts.push(attemptsTable(attempts));
    fill(byId("detail-body"), ...parts);
    this.showButtons(job);
  }

  showGone(id) {
    this.job = null;
    byId("detail-title").textContent = "Job not found";
    fill(byId("detail-body"), el("p", {}, "Job ", shortId(id),
      " no longer exists: it was deleted, or pruned after RETAIN_COMPLETED."));
    this.showButtons(null);
  }

  showButtons(job) {
    this.buttons.retry.hidden = job?.status !== "failed";
    this.buttons.cancel.hidden = !CANCELLABLE.includes(job?.status);
    this.buttons.remove.hidden = job === null;
  }

  async act(action) {
    const buttons = Object.values(this.buttons);
    buttons.forEach((button) => { button.disabled = true; });
    try {
      await action();
    } catch (error) {
      this.onError(error);
    } finally {
      buttons.forEach((button) => { button.disabled = false; });
    }
  }

  async retry() {
    const job = await api.retry(this.job.id);
    toast(`Job ${job.id.slice(0, 8)} is pending again; it runs again shortly.`);
    await this.afterChange();
  }

  async cancel() {
    const { job } = this;
    const running = job.status === "processing";
    const agreed = await confirmAction({
      title: `Cancel this ${job.type} job?`,
      lines: [running
        ? "It is running: its handler is told to stop, and is stopped if it has not after the grace time."
        : "It will not run.",
      "A cancelled job is final: it cannot be retried. Jobs waiting for it are cancelled too, "
        + "unless they were created with onParentFailure “continue”."],
      confirmLabel: "Cancel the job",
      danger: true,
    });
    if (!agreed) return;
    await api.cancel(job.id);
    toast(`Job ${job.id.slice(0, 8)} cancelled.`);
    await this.afterChange();
  }

  async cancelFlow() {
    const { flow } = this;
    const agreed = await confirmAction({
      title: `Cancel this flow of ${flow.jobs.length} job(s)?`,
      lines: cancelFlowLines(flow),
      confirmLabel: "Cancel the flow",
      danger: true,
    });
    if (!agreed) return;
    await api.cancelFlow(flow.id);
    toast(`Flow ${flow.id.slice(0, 8)} cancelled.`);
    await this.afterChange();
  }

  async remove() {
    const { job } = this;
    const agreed = await confirmAction({
      title: `Delete this ${job.type} job?`,
      lines: [el("p", {}, "Job ", shortId(job.id), ` (${job.status}) and its queued run are removed for good.`),
        "Its dead-letter entries, if any, stay as a record."],
      confirmLabel: "Delete the job",
      danger: true,
    });
    if (!agreed) return;
    await api.remove(job.id);
    toast(`Job ${job.id.slice(0, 8)} deleted.`);
    this.close();
    await this.onChange();
  }

  async afterChange() {
    await this.refresh();
    await this.onChange();
  }
}
