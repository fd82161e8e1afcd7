// A job's workflow in its detail: what it waits for (its parents), and for a member of a flow
// (POST /api/flows) the flow's state, every member and what each depends on.

import { STATUSES, chooseOnEnter, el, fill, shortId, statusBadge } from "./dom.js";

const FAILURE_RULES = {
  cancel: "cancel (it is cancelled too)",
  continue: "continue (that parent counts as finished)",
};

/** The parents' facts of a job that has parents (`pendingParents` not null), else []. */
export function parentFacts(job) {
  if (job.pendingParents === null || job.pendingParents === undefined) return [];
  const waits = job.pendingParents === 0
    ? "none: every parent has finished"
    : `${job.pendingParents} parent(s) not completed yet`;
  const rule = FAILURE_RULES[job.onParentFailure] ?? String(job.onParentFailure);
  return [["Still waiting for", waits], ["If a parent fails", rule]];
}

/** "2 waiting, 1 completed": the flow's non-zero counts, known statuses first. */
export function countsText(counts) {
  const names = [...STATUSES, ...Object.keys(counts).filter((name) => !STATUSES.includes(name))];
  const parts = names.filter((name) => (counts[name] ?? 0) > 0)
    .map((name) => `${counts[name]} ${name}`);
  return parts.length ? parts.join(", ") : "no members";
}

// A member's name is its key in the flow's request (a flow made before keys were kept: its
// short id).
function memberName(member) {
  return typeof member.key === "string" ? el("code", { text: member.key }) : shortId(member.id);
}

function memberRow(member, byId, shownId, open) {
  const parents = member.dependsOn.map((id) => byId.get(id));
  const waitsFor = parents.length === 0 ? [el("span", { className: "muted", text: "—" })]
    : parents.flatMap((parent, index) => [index ? ", " : null, memberName(parent)]);
  const here = member.id === shownId ? el("span", { className: "muted small", text: " this job" }) : null;
  const row = el("tr", { data: { id: member.id, status: member.status } },
    el("td", {}, memberName(member), here),
    el("td", { className: "type", text: member.type }),
    el("td", {}, statusBadge(member.status)),
    el("td", {}, ...waitsFor));
  chooseOnEnter(row, () => open(member.id));
  return row;
}

function membersTable(flow, shownId, open) {
  const byId = new Map(flow.jobs.map((member) => [member.id, member]));
  const head = el("tr", {}, ...["Member", "Type", "Status", "Waits for"]
    .map((name) => el("th", { text: name })));
  return el("table", { className: "members" }, el("thead", {}, head),
    el("tbody", {}, ...flow.jobs.map((member) => memberRow(member, byId, shownId, open))));
}

/**
 * The "Flow" section of job `shownId`'s detail: `open(id)` shows a member, `cancel()` asks
 * to cancel the flow (offered while it is active).
 */
export function flowSection(flow, shownId, { open, cancel }) {
  // A flow is "active" while a member waits, is pending or runs: coloured as running.
  const badge = el("span", { className: `badge status-${flow.status === "active" ? "processing" : flow.status}`,
    text: flow.status });
  const summary = el("p", { className: "flow-summary" }, badge,
    ` ${flow.jobs.length} member(s): ${countsText(flow.counts)} · flow `, shortId(flow.id));
  const section = el("section", { className: "block flow" }, el("h3", { text: "Flow" }), summary);
  if (flow.status === "active") {
    const button = el("button", { type: "button", className: "danger", text: "Cancel flow…" });
    button.addEventListener("click", cancel);
    section.append(button);
  }
  section.append(membersTable(flow, shownId, open));
  return section;
}

/** The flow's cancel, explained before it happens. */
export function cancelFlowLines(flow) {
  const unfinished = ["waiting", "pending", "processing"]
    .reduce((sum, name) => sum + (flow.counts[name] ?? 0), 0);
  const what = el("p", {});
  fill(what, el("strong", { text: `${unfinished} member(s)` }),
    " not finished yet are cancelled: waiting and pending ones will not run, running ones are "
    + "told to stop.");
  return [what, "Completed and failed members stay as they are. A cancelled job is final."];
}
