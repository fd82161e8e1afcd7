#!/usr/bin/env python3
"""Load generator for any server that speaks jobqueue's HTTP contract.

It measures, against a base URL (this service or the original Node service):

1. creates: N ``POST /api/jobs`` at concurrency C over one keep-alive HTTP/1.1 pool of C
   connections: requests/s, latency percentiles, errors by status code;
2. end to end: from the first create until every created job is completed or failed,
   counted as the delta of ``GET /api/jobs/stats`` from a baseline taken before phase 1
   (polled every 100 ms): jobs/s;
3. idle latency: K sequential single creates, each followed by ``GET /api/jobs/:id`` every
   5 ms until it is completed: create-to-completed percentiles.

Progress goes to stderr, a summary to stdout, and (with ``--json``) every number plus
metadata to a file. Exit status: 0 clean; 1 timeout or jobs left unfinished; 2 bad usage,
refused URL or unreachable server; 3 finished, but with errors (failed requests, failed jobs,
or a row count that does not match the creates).

Only httpx and the standard library are used.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import math
import os
import platform
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

JSONObject = dict[str, Any]

STATS_POLL_S = 0.1
"""Interval between ``GET /api/jobs/stats`` polls while waiting for jobs to finish."""
IDLE_POLL_S = 0.005
"""Sleep between ``GET /api/jobs/:id`` polls in the idle phase (plus one round trip)."""
IDLE_SAMPLE_LIMIT_S = 30.0
"""Longest wait for one idle-phase job, whatever --timeout says."""
MAX_ERROR_SAMPLES = 3
"""Response bodies kept per error kind, for the report."""
MAX_BODY_CHARS = 500
"""Characters kept of each error body."""
KEEPALIVE_EXPIRY_S = 4.0
"""Idle connections are dropped after this long: below uvicorn's 5 s keep-alive timeout, so the
client never reuses a connection the server is closing at that moment."""
EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE, EXIT_ERRORS = 0, 1, 2, 3


class LoadgenError(Exception):
    """A problem that stops the run before measuring (bad URL, server unreachable)."""


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Options:
    """What to run, from the command line."""

    url: str
    jobs: int
    concurrency: int
    job_type: str
    payload: JSONObject
    idle_samples: int
    timeout_s: float
    request_timeout_s: float
    json_path: str | None
    api_key: str | None
    allow_remote: bool
    progress_s: float


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _json_object(text: str) -> JSONObject:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{}'")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line of this script."""
    parser = argparse.ArgumentParser(
        description="Drive a jobqueue-compatible HTTP API and measure it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--url", default="http://127.0.0.1:3000", help="server base URL")
    parser.add_argument("--jobs", type=_positive_int, default=1000, help="creates in phase 1")
    parser.add_argument(
        "--concurrency", type=_positive_int, default=50, help="requests in flight in phase 1"
    )
    parser.add_argument("--type", dest="job_type", default="noop", help="job type to create")
    parser.add_argument("--payload", type=_json_object, default={}, help="job payload (JSON)")
    parser.add_argument(
        "--idle-samples", type=_non_negative_int, default=20, help="phase 3 samples (0: skip)"
    )
    parser.add_argument(
        "--timeout",
        dest="timeout_s",
        type=_positive_float,
        default=300.0,
        help="seconds allowed for phases 1+2, from the first create",
    )
    parser.add_argument(
        "--request-timeout",
        dest="request_timeout_s",
        type=_positive_float,
        default=30.0,
        help="seconds allowed for one HTTP request",
    )
    parser.add_argument("--json", dest="json_path", help="write all results to this file")
    parser.add_argument("--api-key", help="sent as 'Authorization: Bearer <key>'")
    parser.add_argument(
        "--allow-remote", action="store_true", help="allow a URL whose host is not loopback"
    )
    parser.add_argument(
        "--progress",
        dest="progress_s",
        type=_positive_float,
        default=1.0,
        help="seconds between progress lines on stderr",
    )
    return parser


def parse_options(argv: Sequence[str]) -> Options:
    """Options from the command line (argparse exits with status 2 on bad usage)."""
    ns = build_parser().parse_args(argv)
    return Options(
        url=str(ns.url).rstrip("/"),
        jobs=ns.jobs,
        concurrency=ns.concurrency,
        job_type=ns.job_type,
        payload=ns.payload,
        idle_samples=ns.idle_samples,
        timeout_s=ns.timeout_s,
        request_timeout_s=ns.request_timeout_s,
        json_path=ns.json_path,
        api_key=ns.api_key,
        allow_remote=ns.allow_remote,
        progress_s=ns.progress_s,
    )


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (127.0.0.0/8, ::1)."""
    if host.lower() in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, allow_remote: bool) -> None:
    """Raise LoadgenError unless ``url`` is an http(s) URL on loopback (or remote is allowed)."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise LoadgenError(f"--url must look like http://127.0.0.1:3000, got {url!r}")
    if not allow_remote and not is_loopback_host(parts.hostname):
        raise LoadgenError(
            f"refusing to load-test {parts.hostname!r}: it is not a loopback address. "
            "This tool sends thousands of requests; pass --allow-remote if that host is yours "
            "and meant for it."
        )


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class LatencySummary:
    """Percentiles of a set of latencies, in milliseconds (None when there are none)."""

    count: int
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    mean_ms: float | None


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of sorted, non-empty values, interpolated linearly."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    rank = (len(sorted_values) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def summarize(latencies_ms: Sequence[float]) -> LatencySummary:
    """p50, p90, p99, max and mean of some latencies."""
    if not latencies_ms:
        return LatencySummary(0, None, None, None, None, None)
    values = sorted(latencies_ms)
    return LatencySummary(
        count=len(values),
        p50_ms=round(percentile(values, 50), 3),
        p90_ms=round(percentile(values, 90), 3),
        p99_ms=round(percentile(values, 99), 3),
        max_ms=round(values[-1], 3),
        mean_ms=round(sum(values) / len(values), 3),
    )


# --------------------------------------------------------------------------- HTTP helpers


def make_client(opts: Options, connections: int) -> httpx.AsyncClient:
    """An HTTP/1.1 keep-alive client with a pool of exactly ``connections`` connections."""
    headers = {"Accept": "application/json"}
    if opts.api_key:
        headers["Authorization"] = f"Bearer {opts.api_key}"
    limits = httpx.Limits(
        max_connections=connections,
        max_keepalive_connections=connections,
        keepalive_expiry=KEEPALIVE_EXPIRY_S,
    )
    return httpx.AsyncClient(
        base_url=opts.url,
        headers=headers,
        limits=limits,
        timeout=httpx.Timeout(opts.request_timeout_s),
        http1=True,
        http2=False,
        trust_env=False,
    )


def parse_stats(body: object) -> dict[str, int]:
    """The counts of ``GET /api/jobs/stats``; ValueError when the body is not that shape."""
    if not isinstance(body, dict) or not all(
        isinstance(k, str) and isinstance(v, int) for k, v in body.items()
    ):
        raise ValueError(f"unexpected /api/jobs/stats body: {body!r}"[:MAX_BODY_CHARS])
    for key in ("pending", "processing", "completed", "failed"):
        if key not in body:
            raise ValueError(f"/api/jobs/stats lacks {key!r}: {body!r}"[:MAX_BODY_CHARS])
    return body


async def fetch_stats(client: httpx.AsyncClient) -> dict[str, int]:
    """One ``GET /api/jobs/stats``; raises httpx.HTTPError or ValueError on failure."""
    response = await client.get("/api/jobs/stats")
    response.raise_for_status()
    return parse_stats(response.json())


async def fetch_health(client: httpx.AsyncClient) -> JSONObject:
    """``GET /health`` as recorded metadata: status code and body (never raises)."""
    try:
        response = await client.get("/health")
    except httpx.HTTPError as exc:
        return {"error": type(exc).__name__}
    try:
        body: object = response.json()
    except ValueError:
        body = response.text[:MAX_BODY_CHARS]
    return {"status": response.status_code, "body": body}


def error_key(exc: BaseException) -> str:
    """A short name for a transport error, used like a status code in error counts."""
    return type(exc).__name__


def short_body(response: httpx.Response) -> str:
    """The start of a response body, for error reports."""
    return response.text[:MAX_BODY_CHARS]


# --------------------------------------------------------------------------- phase 1


@dataclass
class CreateTally:
    """What phase 1 has done so far (shared by its workers and the progress monitor)."""

    sent: int = 0
    ok: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: dict[str, list[str]] = field(default_factory=dict)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    started: float = field(default_factory=time.perf_counter)

    def record_error(self, key: str, sample: str) -> None:
        """Count an error and keep its first few bodies, with when it happened."""
        self.errors[key] += 1
        kept = self.error_samples.setdefault(key, [])
        if len(kept) < MAX_ERROR_SAMPLES:
            at = time.perf_counter() - self.started
            kept.append(f"[request {self.sent} of the run, at +{at:.2f} s] {sample}")


@dataclass(frozen=True)
class CreateResult:
    """Phase 1 results."""

    requested: int
    sent: int
    created: int
    not_sent: int
    elapsed_s: float
    requests_per_s: float
    latency: LatencySummary
    errors_by_status: dict[str, int]
    error_samples: dict[str, list[str]]


def create_body(opts: Options) -> JSONObject:
    """The body of every create request."""
    return {"type": opts.job_type, "payload": opts.payload}


async def create_one(client: httpx.AsyncClient, body: JSONObject, tally: CreateTally) -> None:
    """One ``POST /api/jobs``: time it and record its outcome."""
    tally.sent += 1
    started = time.perf_counter()
    try:
        response = await client.post("/api/jobs", json=body)
    except httpx.HTTPError as exc:
        elapsed_ms = (time.perf_counter() - started) * 1000
        tally.latencies_ms.append(elapsed_ms)
        tally.record_error(error_key(exc), f"{exc!r} after {elapsed_ms:.0f} ms"[:MAX_BODY_CHARS])
        return
    tally.latencies_ms.append((time.perf_counter() - started) * 1000)
    if response.status_code == 201:
        tally.ok += 1
    else:
        tally.record_error(str(response.status_code), short_body(response))


async def create_worker(
    client: httpx.AsyncClient,
    body: JSONObject,
    indices: Iterator[int],
    tally: CreateTally,
    deadline: float,
) -> None:
    """Send creates one after another, taking numbers from a shared iterator until none left."""
    for _ in indices:
        if time.perf_counter() >= deadline:
            return
        await create_one(client, body, tally)


async def run_creates(
    client: httpx.AsyncClient, opts: Options, tally: CreateTally, deadline: float
) -> CreateResult:
    """Phase 1: N creates at concurrency C, stopping early only at the deadline."""
    body = create_body(opts)
    indices = iter(range(opts.jobs))  # shared: each worker takes the next number
    started = time.perf_counter()
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(opts.concurrency, opts.jobs)):
                group.create_task(create_worker(client, body, indices, tally, deadline))
    finally:
        tally.finished.set()
    elapsed = time.perf_counter() - started
    return CreateResult(
        requested=opts.jobs,
        sent=tally.sent,
        created=tally.ok,
        not_sent=opts.jobs - tally.sent,
        elapsed_s=round(elapsed, 4),
        requests_per_s=round(tally.sent / elapsed, 2) if elapsed > 0 else 0.0,
        latency=summarize(tally.latencies_ms),
        errors_by_status=dict(sorted(tally.errors.items())),
        error_samples=tally.error_samples,
    )


# --------------------------------------------------------------------------- phase 2


@dataclass(frozen=True)
class EndToEndResult:
    """Phase 2 results: from the first create to the last job finished."""

    complete: bool
    timed_out: bool
    created: int
    completed: int
    failed: int
    incomplete: int
    elapsed_s: float
    jobs_per_s: float | None
    rows_added: int | None
    baseline: dict[str, int]
    final_stats: dict[str, int] | None
    stats_errors: dict[str, int]
    granularity_note: str


@dataclass
class MonitorState:
    """The monitor's latest view of the server."""

    stats: dict[str, int] | None = None
    seen_at: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)


def deltas(stats: dict[str, int], baseline: dict[str, int]) -> tuple[int, int]:
    """Jobs completed and failed since the baseline."""
    return (
        stats.get("completed", 0) - baseline.get("completed", 0),
        stats.get("failed", 0) - baseline.get("failed", 0),
    )


def rows_added(stats: dict[str, int], baseline: dict[str, int]) -> int:
    """Jobs in any status now, minus jobs in any status at the baseline."""
    return sum(stats.values()) - sum(baseline.values())


def progress_line(
    elapsed: float, tally: CreateTally, opts: Options, state: MonitorState, baseline: dict[str, int]
) -> str:
    """One progress line for stderr."""
    done = "?"
    if state.stats is not None:
        completed, failed = deltas(state.stats, baseline)
        done = f"{completed} completed, {failed} failed"
    errors = sum(tally.errors.values())
    return (
        f"[loadgen {elapsed:6.1f}s] created {tally.ok}/{opts.jobs} (errors {errors}); "
        f"{done}; pending {state.stats.get('pending', '?') if state.stats else '?'}"
    )


async def poll_stats_once(client: httpx.AsyncClient, state: MonitorState) -> None:
    """Refresh the monitor's view; count (never raise) a failed poll."""
    try:
        stats = await fetch_stats(client)
    except httpx.HTTPStatusError as exc:
        state.errors[str(exc.response.status_code)] += 1
        return
    except (httpx.HTTPError, ValueError) as exc:
        state.errors[error_key(exc)] += 1
        return
    state.stats = stats
    state.seen_at = time.perf_counter()


def all_done(tally: CreateTally, state: MonitorState, baseline: dict[str, int]) -> bool:
    """True once creates are over and every created job is completed or failed."""
    if not tally.finished.is_set() or state.stats is None:
        return False
    completed, failed = deltas(state.stats, baseline)
    return completed + failed >= tally.ok


async def monitor(
    client: httpx.AsyncClient,
    opts: Options,
    *,
    tally: CreateTally,
    baseline: dict[str, int],
    started: float,
    deadline: float,
) -> MonitorState:
    """Poll stats every 100 ms from the first create until all jobs are done or the deadline."""
    state = MonitorState()
    last_progress = started
    max_polls = math.ceil((deadline - started) / STATS_POLL_S) + 2
    for _ in range(max_polls):
        await poll_stats_once(client, state)
        now = time.perf_counter()
        if all_done(tally, state, baseline) or now >= deadline:
            break
        if now - last_progress >= opts.progress_s:
            last_progress = now
            print(progress_line(now - started, tally, opts, state, baseline), file=sys.stderr)
        await asyncio.sleep(min(STATS_POLL_S, max(0.0, deadline - now)))
    return state


def end_to_end_result(
    tally: CreateTally,
    state: MonitorState,
    baseline: dict[str, int],
    started: float,
    *,
    in_time: bool,
) -> EndToEndResult:
    """Phase 2 numbers from the monitor's last view (``in_time``: all done by the deadline)."""
    done = in_time and all_done(tally, state, baseline)
    completed, failed = deltas(state.stats, baseline) if state.stats else (0, 0)
    end = state.seen_at if done else time.perf_counter()
    elapsed = end - started
    return EndToEndResult(
        complete=done,
        timed_out=not done,
        created=tally.ok,
        completed=completed,
        failed=failed,
        incomplete=max(0, tally.ok - completed - failed),
        elapsed_s=round(elapsed, 4),
        jobs_per_s=round((completed + failed) / elapsed, 2) if done and elapsed > 0 else None,
        rows_added=rows_added(state.stats, baseline) if state.stats else None,
        baseline=baseline,
        final_stats=state.stats,
        stats_errors=dict(state.errors),
        granularity_note=(
            f"end time = first stats poll (every {STATS_POLL_S * 1000:.0f} ms) that saw every "
            "created job completed or failed, so it may be late by up to one poll interval"
        ),
    )


async def stuck_samples(client: httpx.AsyncClient, limit: int = 5) -> list[JSONObject]:
    """A few unfinished jobs, for the report when phase 2 times out."""
    found: list[JSONObject] = []
    for status in ("pending", "processing"):
        try:
            response = await client.get("/api/jobs", params={"status": status, "limit": limit})
            if response.status_code == 200 and isinstance(response.json(), list):
                found.extend(response.json()[:limit])
        except (httpx.HTTPError, ValueError):
            continue
    return found


# --------------------------------------------------------------------------- phase 3


@dataclass(frozen=True)
class IdleSample:
    """One create on an idle server, followed until it finished."""

    create_ms: float | None
    done_ms: float | None
    status: str
    polls: int
    error: str | None = None


@dataclass(frozen=True)
class IdleResult:
    """Phase 3 results."""

    samples: list[IdleSample]
    create: LatencySummary
    create_to_completed: LatencySummary
    failures: int
    granularity_note: str


async def poll_job(
    client: httpx.AsyncClient, job_id: str, started: float, limit_s: float
) -> IdleSample | tuple[str, int]:
    """Poll one job every 5 ms until completed or failed: its final status and poll count.

    Returns an error IdleSample if polling itself fails or the time limit passes.
    """
    max_polls = math.ceil(limit_s / IDLE_POLL_S) + 1
    status = "?"
    for polls in range(1, max_polls + 1):
        try:
            response = await client.get(f"/api/jobs/{job_id}")
        except httpx.HTTPError as exc:
            return IdleSample(None, None, status, polls, f"poll: {error_key(exc)}")
        if response.status_code != 200:
            return IdleSample(
                None, None, status, polls, f"poll {response.status_code}: {short_body(response)}"
            )
        try:
            status = str(response.json()["status"])
        except (ValueError, KeyError, TypeError):
            return IdleSample(None, None, status, polls, f"poll body: {short_body(response)}")
        if status in {"completed", "failed", "cancelled"}:
            return status, polls
        if time.perf_counter() - started >= limit_s:
            break
        await asyncio.sleep(IDLE_POLL_S)
    return IdleSample(None, None, status, max_polls, f"not finished within {limit_s:.0f} s")


async def idle_sample(client: httpx.AsyncClient, opts: Options) -> IdleSample:
    """One create, then poll until done; latencies measured from just before the POST."""
    limit_s = min(IDLE_SAMPLE_LIMIT_S, opts.timeout_s)
    started = time.perf_counter()
    try:
        response = await client.post("/api/jobs", json=create_body(opts))
    except httpx.HTTPError as exc:
        return IdleSample(None, None, "?", 0, f"create: {error_key(exc)}")
    create_ms = (time.perf_counter() - started) * 1000
    if response.status_code != 201:
        return IdleSample(
            create_ms, None, "?", 0, f"create {response.status_code}: {short_body(response)}"
        )
    polled = await poll_job(client, str(response.json()["id"]), started, limit_s)
    if isinstance(polled, IdleSample):
        return IdleSample(create_ms, None, polled.status, polled.polls, polled.error)
    status, polls = polled
    done_ms = (time.perf_counter() - started) * 1000
    error = None if status == "completed" else f"job ended {status}"
    return IdleSample(round(create_ms, 3), round(done_ms, 3), status, polls, error)


async def run_idle(client: httpx.AsyncClient, opts: Options) -> IdleResult:
    """Phase 3: K sequential creates on an idle server, each followed until completed."""
    samples: list[IdleSample] = []
    for index in range(opts.idle_samples):
        sample = await idle_sample(client, opts)
        samples.append(sample)
        if sample.error:
            print(f"[loadgen idle {index + 1}] {sample.error}", file=sys.stderr)
        await asyncio.sleep(0.02)  # let the server settle between samples
    good = [s for s in samples if s.error is None]
    return IdleResult(
        samples=samples,
        create=summarize([s.create_ms for s in good if s.create_ms is not None]),
        create_to_completed=summarize([s.done_ms for s in good if s.done_ms is not None]),
        failures=len(samples) - len(good),
        granularity_note=(
            f"completion seen by polling GET /api/jobs/:id with {IDLE_POLL_S * 1000:.0f} ms sleeps "
            "between polls (plus each poll's round trip), so create->completed may be late by "
            "that much"
        ),
    )


# --------------------------------------------------------------------------- report


def nproc() -> int:
    """CPUs this process may run on (what ``nproc`` prints)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 0


def loadavg() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (other work on a shared machine skews results)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not available
        return None


def metadata(opts: Options, health: JSONObject) -> JSONObject:
    """Where, when and how this run happened."""
    return {
        "url": opts.url,
        "jobs": opts.jobs,
        "concurrency": opts.concurrency,
        "type": opts.job_type,
        "payload": opts.payload,
        "idle_samples": opts.idle_samples,
        "timeout_s": opts.timeout_s,
        "request_timeout_s": opts.request_timeout_s,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "httpx": httpx.__version__,
        "hostname": socket.gethostname(),
        "nproc": nproc(),
        "loadavg_at_start": loadavg(),
        "platform": platform.platform(),
        "server_health": health,
    }


def fmt_ms(value: float | None) -> str:
    """A latency for humans."""
    return "-" if value is None else f"{value:.1f} ms"


def latency_line(label: str, summary: LatencySummary) -> str:
    """One line of percentiles."""
    return (
        f"  {label}: p50 {fmt_ms(summary.p50_ms)}, p90 {fmt_ms(summary.p90_ms)}, "
        f"p99 {fmt_ms(summary.p99_ms)}, max {fmt_ms(summary.max_ms)} (n={summary.count})"
    )


def create_lines(create: CreateResult) -> list[str]:
    """The phase 1 part of the summary."""
    lines = [
        f"Phase 1, creates: {create.created}/{create.requested} created "
        f"({create.sent} sent, {create.not_sent} not sent) in {create.elapsed_s:.2f} s",
        f"  {create.requests_per_s:.1f} requests/s",
        latency_line("latency", create.latency),
    ]
    if create.errors_by_status:
        lines.append(f"  errors by status: {create.errors_by_status}")
        lines.extend(f"    {key}: {bodies[0]}" for key, bodies in create.error_samples.items())
    return lines


def e2e_lines(e2e: EndToEndResult) -> list[str]:
    """The phase 2 part of the summary."""
    rate = "-" if e2e.jobs_per_s is None else f"{e2e.jobs_per_s:.1f} jobs/s"
    lines = [
        f"Phase 2, end to end: {e2e.completed} completed, {e2e.failed} failed, "
        f"{e2e.incomplete} unfinished of {e2e.created} created, in {e2e.elapsed_s:.2f} s: {rate}",
    ]
    if e2e.timed_out:
        lines.append(f"  TIMED OUT with {e2e.incomplete} jobs unfinished; stats {e2e.final_stats}")
    if e2e.rows_added is not None and e2e.rows_added != e2e.created:
        lines.append(f"  WARNING: stats count {e2e.rows_added} new jobs, {e2e.created} created")
    if e2e.stats_errors:
        lines.append(f"  stats poll errors: {e2e.stats_errors}")
    lines.append(f"  note: {e2e.granularity_note}")
    return lines


def idle_lines(idle: IdleResult | None) -> list[str]:
    """The phase 3 part of the summary."""
    if idle is None:
        return ["Phase 3, idle latency: skipped"]
    return [
        f"Phase 3, idle latency ({len(idle.samples)} samples, {idle.failures} failed):",
        latency_line("create", idle.create),
        latency_line("create->completed", idle.create_to_completed),
        f"  note: {idle.granularity_note}",
    ]


def render_summary(
    meta: JSONObject, create: CreateResult, e2e: EndToEndResult, idle: IdleResult | None
) -> str:
    """The human-readable summary printed on stdout."""
    head = (
        f"loadgen: {meta['url']} N={meta['jobs']} C={meta['concurrency']} type={meta['type']} "
        f"at {meta['timestamp']} (host {meta['hostname']}, nproc {meta['nproc']}, "
        f"Python {meta['python']})"
    )
    return "\n".join([head, *create_lines(create), *e2e_lines(e2e), *idle_lines(idle)])


def exit_status(create: CreateResult, e2e: EndToEndResult, idle: IdleResult | None) -> int:
    """0 clean, 1 unfinished, 3 finished with errors."""
    if not e2e.complete:
        return EXIT_INCOMPLETE
    dirty = (
        create.errors_by_status
        or e2e.failed
        or (e2e.rows_added is not None and e2e.rows_added != e2e.created)
        or (idle is not None and idle.failures)
    )
    return EXIT_ERRORS if dirty else EXIT_OK


def write_json(path: str, report: JSONObject) -> None:
    """Write the full report as JSON."""
    with open(path, "w", encoding="utf-8") as out:
        json.dump(report, out, indent=2, sort_keys=False)
        out.write("\n")


# --------------------------------------------------------------------------- main


async def take_baseline(client: httpx.AsyncClient) -> dict[str, int]:
    """Stats before phase 1; LoadgenError when the server cannot give them."""
    try:
        return await fetch_stats(client)
    except httpx.HTTPStatusError as exc:
        raise LoadgenError(
            f"GET /api/jobs/stats answered {exc.response.status_code}: {short_body(exc.response)}"
        ) from exc
    except (httpx.HTTPError, ValueError) as exc:
        raise LoadgenError(f"cannot read {exc!r} from GET /api/jobs/stats") from exc


async def run_load(
    opts: Options, creates: httpx.AsyncClient, watcher: httpx.AsyncClient
) -> tuple[CreateResult, EndToEndResult, list[JSONObject]]:
    """Phases 1 and 2, run together: creates, and a monitor polling stats from the start."""
    baseline = await take_baseline(watcher)
    tally = CreateTally()
    started = time.perf_counter()
    deadline = started + opts.timeout_s
    watch = asyncio.create_task(
        monitor(watcher, opts, tally=tally, baseline=baseline, started=started, deadline=deadline)
    )
    create = await run_creates(creates, opts, tally, deadline)
    state = await watch
    done_in_time = all_done(tally, state, baseline)
    if not done_in_time:
        await poll_stats_once(watcher, state)  # counts after the last in-flight create returned
    e2e = end_to_end_result(tally, state, baseline, started, in_time=done_in_time)
    stuck = [] if e2e.complete else await stuck_samples(watcher)
    return create, e2e, stuck


async def run(opts: Options) -> int:
    """Every phase, the summary and the JSON file; returns the exit status."""
    async with make_client(opts, opts.concurrency) as creates, make_client(opts, 2) as watcher:
        health = await fetch_health(watcher)
        if "error" in health:
            raise LoadgenError(f"cannot reach {opts.url}/health: {health['error']}")
        meta = metadata(opts, health)
        create, e2e, stuck = await run_load(opts, creates, watcher)
        idle = await run_idle(creates, opts) if e2e.complete and opts.idle_samples else None
    print(render_summary(meta, create, e2e, idle))
    if opts.json_path:
        report = {
            "meta": meta,
            "create": asdict(create),
            "end_to_end": asdict(e2e),
            "idle": asdict(idle) if idle else None,
            "stuck_samples": stuck,
            "loadavg_at_end": loadavg(),
        }
        write_json(opts.json_path, report)
    return exit_status(create, e2e, idle)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, check the URL, run; returns the process exit status."""
    opts = parse_options(sys.argv[1:] if argv is None else argv)
    try:
        check_url(opts.url, opts.allow_remote)
        return asyncio.run(run(opts))
    except LoadgenError as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
