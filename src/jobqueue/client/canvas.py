"""Workflows from Python, by the names Celery users know: ``chain``, ``group``, ``chord``.

A workflow is built from ``job(...)`` leaves and sent whole with ``Client.create_flow``,
which creates every job, with every dependency, in one transaction (``POST /api/flows`` in
its graph shape). Nothing here does I/O::

    flow = chain(job("resize", {"image": 7}), job("index", {"image": 7}))
    flow = chord(group(job("send", {"to": to}) for to in addresses), job("report"))
    flow = chain(job("charge"), group(job("ship"), job("notify")), job("close"))

In a ``chain`` each part starts after the one before it has completed (all of it, for a
group); a ``group``'s parts run side by side; ``chord(group, callback)`` runs the callback
once after every part of the group, with their results in ``ctx.parent_results``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jobqueue.client.calls import JobSpec, ParentFailure


@dataclass(frozen=True, slots=True)
class Chain:
    """Parts run one after another."""

    parts: tuple[Canvas, ...]


@dataclass(frozen=True, slots=True)
class Group:
    """Parts run side by side."""

    parts: tuple[Canvas, ...]


@dataclass(frozen=True, slots=True)
class Chord:
    """A group, then one callback once every part of it has completed."""

    header: Group
    callback: Canvas


Canvas = JobSpec | Chain | Group | Chord
"""What ``chain``, ``group``, ``chord`` and ``job`` build: a ``JobSpec`` is one job."""
FlowRequest = Canvas | Mapping[str, Any]
"""What ``create_flow`` takes: a canvas, or a ``POST /api/flows`` body of your own (a
BullMQ tree, ``{"steps": [...]}`` or ``{"jobs": [...]}``)."""


def job(
    type: str,
    payload: Mapping[str, Any] | None = None,
    *,
    run_at: datetime | None = None,
    delay: timedelta | None = None,
    priority: int | None = None,
    max_attempts: int | None = None,
    on_parent_failure: ParentFailure | None = None,
) -> JobSpec:
    """One job of ``type`` with ``payload``, and the options of ``Client.create``; what it
    waits for is the canvas's to say (``on_parent_failure``: ``"continue"`` runs it even
    when a job it waits for fails for good or is cancelled, with None for that result)."""
    return JobSpec(
        type,
        payload or {},
        run_at,
        delay,
        priority,
        max_attempts,
        idempotency_key=None,
        on_parent_failure=on_parent_failure,
    )


def chain(*parts: Canvas) -> Chain:
    """``parts`` one after another: each starts once the one before it completed."""
    return Chain(_some(parts, "chain"))


def group(*parts: Canvas | Iterable[Canvas]) -> Group:
    """``parts`` side by side; ``group(job(...) for ...)`` takes a generator too."""
    flat: list[Canvas] = []
    for part in parts:
        flat.extend([part] if isinstance(part, JobSpec | Chain | Group | Chord) else part)
    return Group(_some(flat, "group"))


def chord(header: Group | Iterable[Canvas], callback: Canvas) -> Chord:
    """``callback`` once after every part of ``header`` (a group, or parts to group)."""
    return Chord(header if isinstance(header, Group) else group(header), callback)


def flow_body(canvas: Canvas) -> dict[str, Any]:
    """The ``POST /api/flows`` body (the graph shape) that runs ``canvas``; each job's key is
    its position in the order the canvas was written (``"0"``, ``"1"``, ...)."""
    jobs: list[dict[str, Any]] = []
    _place(canvas, (), jobs)
    return {"jobs": jobs}


def request_body(flow: FlowRequest) -> Mapping[str, Any]:
    """The ``POST /api/flows`` body for ``flow``: a canvas's graph, or the body as given."""
    if isinstance(flow, JobSpec | Chain | Group | Chord):
        return flow_body(flow)
    return flow


def _place(canvas: Canvas, after: tuple[str, ...], jobs: list[dict[str, Any]]) -> tuple[str, ...]:
    """Add ``canvas``'s jobs, its first ones depending on ``after``; its last jobs' keys."""
    if isinstance(canvas, JobSpec):
        if canvas.depends_on:
            raise ValueError("a job of a flow waits for what the flow says: no depends_on")
        key = str(len(jobs))
        jobs.append({"key": key, **canvas.body(), "dependsOn": list(after)})
        return (key,)
    if isinstance(canvas, Chain):
        for part in canvas.parts:
            after = _place(part, after, jobs)
        return after
    if isinstance(canvas, Group):
        return tuple(key for part in canvas.parts for key in _place(part, after, jobs))
    return _place(canvas.callback, _place(canvas.header, after, jobs), jobs)


def _some(parts: Iterable[Canvas], name: str) -> tuple[Canvas, ...]:
    """The parts, at least one: an empty group would let what follows it start at once."""
    found = tuple(parts)
    if not found:
        raise ValueError(f"a {name} needs at least one part")
    return found
