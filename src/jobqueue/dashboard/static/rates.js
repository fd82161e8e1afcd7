// Completed and failed per minute, worked out in the browser from successive /stats samples,
// and drawn as an SVG bar chart. Only what this page saw is shown: nothing before it opened,
// nothing while its tab was hidden (polling pauses then).

import { clockOf as clock } from "./dom.js";

const MINUTE_MS = 60_000;
export const SHOWN_MINUTES = 15;
const SVG = "http://www.w3.org/2000/svg";
const SIZE = { width: 400, height: 160, left: 30, right: 6, top: 24, bottom: 20 };
const SERIES = [
  { key: "completed", className: "bar-completed", label: "completed" },
  { key: "failed", className: "bar-failed", label: "failed" },
];

/** Per-minute increases of the completed and failed counts, from samples of /stats. */
export class RateTracker {
  constructor(now = Date.now()) {
    this.openedAt = now;
    this.last = null;
    this.bins = new Map();
    this.totals = { completed: 0, failed: 0 };
  }

  /** Record the counts seen at `at`; the increase since the last sample counts to its minute. */
  sample(stats, at = Date.now()) {
    const minute = Math.floor(at / MINUTE_MS);
    const bin = this.bins.get(minute) ?? { completed: 0, failed: 0 };
    if (this.last !== null) {
      for (const { key } of SERIES) {
        // A fall (a retry, a delete, a prune) is not a negative rate: it is left out.
        const rise = Math.max(0, (stats[key] ?? 0) - this.last[key]);
        bin[key] += rise;
        this.totals[key] += rise;
      }
    }
    this.bins.set(minute, bin);
    this.last = { completed: stats.completed ?? 0, failed: stats.failed ?? 0 };
    for (const old of this.bins.keys()) {
      if (old <= minute - SHOWN_MINUTES) this.bins.delete(old);
    }
  }

  /** Sampling stops (hidden tab, lost key): the next sample starts from its own counts. */
  pause() {
    this.last = null;
  }

  /** The last SHOWN_MINUTES minutes, oldest first; `bin` is null for a minute not sampled. */
  series(now = Date.now()) {
    const current = Math.floor(now / MINUTE_MS);
    return Array.from({ length: SHOWN_MINUTES }, (_, index) => {
      const minute = current - SHOWN_MINUTES + 1 + index;
      return { start: new Date(minute * MINUTE_MS), bin: this.bins.get(minute) ?? null };
    });
  }
}

function svgNode(tag, attributes = {}, text = undefined) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function niceCeiling(value) {
  if (value <= 4) return 4;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 2.5, 5, 10].find((factor) => factor * magnitude >= value);
  return step * magnitude;
}

function gridLines(top, plotHeight) {
  const nodes = [];
  for (const fraction of [0, 0.5, 1]) {
    const y = SIZE.top + plotHeight * (1 - fraction);
    const label = String(Math.round(top * fraction));
    nodes.push(svgNode("line", { x1: SIZE.left, x2: SIZE.width - SIZE.right, y1: y, y2: y,
      class: "grid" }));
    nodes.push(svgNode("text", { x: SIZE.left - 6, y: y + 4, class: "axis end" }, label));
  }
  return nodes;
}

function barsOf(slot, x, slotWidth, top, plotHeight) {
  const barWidth = Math.max(2, (slotWidth - 6) / 2);
  return SERIES.map(({ key, className, label }, index) => {
    const height = (slot.bin[key] / top) * plotHeight;
    const bar = svgNode("rect", {
      x: x + 3 + index * barWidth,
      y: SIZE.top + plotHeight - height,
      width: barWidth - 1,
      height: Math.max(height, slot.bin[key] > 0 ? 1 : 0),
      class: className,
    });
    bar.append(svgNode("title", {}, `${clock(slot.start)}: ${slot.bin[key]} ${label}`));
    return bar;
  });
}

function legend() {
  return SERIES.map(({ className, label }, index) => {
    const x = SIZE.left + index * 130;
    const group = svgNode("g");
    group.append(svgNode("rect", { x, y: 4, width: 10, height: 10, class: className }));
    group.append(svgNode("text", { x: x + 14, y: 13, class: "axis" }, `${label} / min`));
    return group;
  });
}

/** Draw `series` (from RateTracker.series) into the <svg> `chart`. */
export function drawRates(chart, series) {
  const plotWidth = SIZE.width - SIZE.left - SIZE.right;
  const plotHeight = SIZE.height - SIZE.top - SIZE.bottom;
  const peak = Math.max(0, ...series.flatMap(({ bin }) => (bin ? [bin.completed, bin.failed] : [])));
  const top = niceCeiling(peak);
  const slotWidth = plotWidth / series.length;
  const nodes = [...gridLines(top, plotHeight), ...legend()];
  series.forEach((slot, index) => {
    const x = SIZE.left + index * slotWidth;
    if (slot.bin) nodes.push(...barsOf(slot, x, slotWidth, top, plotHeight));
    if (index % 5 === 4 || index === series.length - 1) {
      const label = index === series.length - 1 ? "now" : clock(slot.start);
      nodes.push(svgNode("text", { x: x + slotWidth / 2, y: SIZE.height - 6, class: "axis mid" },
        label));
    }
  });
  chart.replaceChildren(...nodes);
}
