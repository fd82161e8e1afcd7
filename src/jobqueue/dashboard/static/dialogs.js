// The confirmation dialog in front of every action that cannot be undone, and the short
// messages (toasts) that say how an action went.

import { byId, el, fill } from "./dom.js";

const TOAST_MS = 6000;

/**
 * Ask before acting: `lines` (strings or nodes) say what will happen. Resolves true when the
 * operator presses `confirmLabel`, false on "Keep as is", Escape or closing.
 */
export function confirmAction({ title, lines, confirmLabel, danger = false }) {
  const dialog = byId("confirm");
  const yes = byId("confirm-yes");
  const no = byId("confirm-no");
  byId("confirm-title").textContent = title;
  fill(byId("confirm-body"), ...lines.map((line) => (typeof line === "string"
    ? el("p", { text: line }) : line)));
  yes.textContent = confirmLabel;
  yes.className = danger ? "danger" : "primary";
  return new Promise((resolve) => {
    const finish = (answer) => {
      yes.removeEventListener("click", onYes);
      no.removeEventListener("click", onNo);
      dialog.removeEventListener("close", onClose);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const onYes = () => finish(true);
    const onNo = () => finish(false);
    const onClose = () => finish(false);
    yes.addEventListener("click", onYes);
    no.addEventListener("click", onNo);
    dialog.addEventListener("close", onClose);
    dialog.showModal();
    no.focus();
  });
}

/**
 * A message in the corner for a few seconds; `kind` is "ok" or "error". The corner is a
 * popover, shown again on top at each message, so a message shows above an open dialog too.
 */
export function toast(message, kind = "ok") {
  const corner = byId("toasts");
  const note = el("div", { className: `toast toast-${kind}`, text: message });
  note.setAttribute("role", kind === "error" ? "alert" : "status");
  corner.append(note);
  if (corner.matches(":popover-open")) corner.hidePopover();
  corner.showPopover();
  setTimeout(() => {
    note.remove();
    if (corner.childElementCount === 0 && corner.matches(":popover-open")) corner.hidePopover();
  }, TOAST_MS);
}
