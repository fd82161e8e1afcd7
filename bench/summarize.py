#!/usr/bin/env python3
"""Medians across several ``loadgen.py --json`` result files.

Usage: ``python bench/summarize.py run-1.json run-2.json ... [--json medians.json]``.
Prints one line per metric: median, min, max and every run's value.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

METRICS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("create req/s", ("create", "requests_per_s"), "req/s"),
    ("create p50", ("create", "latency", "p50_ms"), "ms"),
    ("create p90", ("create", "latency", "p90_ms"), "ms"),
    ("create p99", ("create", "latency", "p99_ms"), "ms"),
    ("create max", ("create", "latency", "max_ms"), "ms"),
    ("e2e jobs/s", ("end_to_end", "jobs_per_s"), "jobs/s"),
    ("e2e seconds", ("end_to_end", "elapsed_s"), "s"),
    ("idle create p50", ("idle", "create", "p50_ms"), "ms"),
    ("idle create->completed p50", ("idle", "create_to_completed", "p50_ms"), "ms"),
    ("idle create->completed p99", ("idle", "create_to_completed", "p99_ms"), "ms"),
    ("machine load avg 1m, start", ("meta", "loadavg_at_start", "0"), "procs"),
    ("machine load avg 1m, end", ("loadavg_at_end", "0"), "procs"),
)
"""(label, path into a loadgen JSON report, unit) for every summarized metric."""


@dataclass(frozen=True)
class MetricSummary:
    """One metric across runs."""

    label: str
    unit: str
    median: float | None
    minimum: float | None
    maximum: float | None
    values: list[float | None]


def dig(report: Any, path: Sequence[str]) -> float | None:
    """The number at ``path`` (keys, or digits for list items) in a report, or None if absent."""
    node = report
    for key in path:
        if isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        elif isinstance(node, dict) and node.get(key) is not None:
            node = node[key]
        else:
            return None
    return float(node) if isinstance(node, int | float) else None


def summarize_metric(
    label: str, path: Sequence[str], unit: str, reports: Sequence[Any]
) -> MetricSummary:
    """Median, min and max of one metric over the runs that have it."""
    values = [dig(report, path) for report in reports]
    present = [v for v in values if v is not None]
    return MetricSummary(
        label=label,
        unit=unit,
        median=round(statistics.median(present), 2) if present else None,
        minimum=min(present) if present else None,
        maximum=max(present) if present else None,
        values=values,
    )


def problems(report: Any) -> list[str]:
    """What went wrong in one run: create errors, failed or unfinished jobs, idle failures."""
    found: list[str] = []
    create = report.get("create") or {}
    if create.get("errors_by_status"):
        found.append(f"create errors {create['errors_by_status']}")
    e2e = report.get("end_to_end") or {}
    if e2e.get("failed"):
        found.append(f"{e2e['failed']} jobs failed")
    if not e2e.get("complete", False):
        found.append(f"timed out, {e2e.get('incomplete')} unfinished")
    if e2e.get("rows_added") not in (None, e2e.get("created")):
        found.append(f"stats count {e2e.get('rows_added')} new jobs for {e2e.get('created')}")
    idle = report.get("idle") or {}
    if idle.get("failures"):
        found.append(f"{idle['failures']} idle samples failed")
    return found


def fmt(value: float | None) -> str:
    """A number for the table."""
    return "-" if value is None else f"{value:.1f}"


def render(summaries: Sequence[MetricSummary], names: Sequence[str], reports: Sequence[Any]) -> str:
    """The table printed on stdout, then each run's problems."""
    lines = [f"{'metric':<30} {'median':>9} {'min':>9} {'max':>9}  unit    runs"]
    for s in summaries:
        runs = " ".join(fmt(v) for v in s.values)
        lines.append(
            f"{s.label:<30} {fmt(s.median):>9} {fmt(s.minimum):>9} {fmt(s.maximum):>9}"
            f"  {s.unit:<7} {runs}"
        )
    for name, report in zip(names, reports, strict=True):
        issues = problems(report)
        lines.append(f"{name}: {'; '.join(issues) if issues else 'clean'}")
    return "\n".join(lines)


def load(path: str) -> Any:
    """One loadgen JSON report."""
    with open(path, encoding="utf-8") as source:
        return json.load(source)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns 1 when any run had a problem, 0 otherwise."""
    parser = argparse.ArgumentParser(description="Medians of loadgen.py JSON reports.")
    parser.add_argument("reports", nargs="+", help="loadgen --json files")
    parser.add_argument("--json", dest="json_path", help="also write the medians here")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    names: list[str] = args.reports
    reports = [load(path) for path in names]
    summaries = [summarize_metric(label, path, unit, reports) for label, path, unit in METRICS]
    print(render(summaries, names, reports))
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as out:
            json.dump({"runs": names, "metrics": [asdict(s) for s in summaries]}, out, indent=2)
    return 1 if any(problems(report) for report in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
