"""Workflows with no I/O: jobs that wait for other jobs, the shapes a flow is sent in, and
what a job does when a job it waits for fails.

A dependency is an edge (child, parent): the child runs after the parent completed. A child
counts its unfinished parents (``Job.pending_parents``); every parent that finishes settles
its edges and takes one off each child's count, and a child whose count reaches 0 becomes
pending in that same transaction. An edge is settled once: a parent that fails (children
with ``continue`` count it as finished), is retried and then completes is never counted twice.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from jobqueue.domain.errors import InvalidJobError
from jobqueue.domain.jobs import Job, JobStatus, NewJob, OnParentFailure

MAX_PARENTS = 1_000
"""Most jobs one job may depend on (the fan-in size): the parents' results are read, and
handed to its handler, at once."""
MAX_FLOW_JOBS = 5_000
"""Most jobs in one flow: they are inserted in one transaction."""
MAX_TREE_DEPTH = 100
"""Deepest nesting of a flow tree's ``children``: a longer chain is sent as ``steps``."""

_ENDED_BADLY = {JobStatus.FAILED: "failed", JobStatus.CANCELLED: "was cancelled"}


class InvalidFlowError(InvalidJobError):
    """A flow or a dependency list that cannot be run: unknown ids, a cycle, too large (400)."""


@dataclass(frozen=True, slots=True)
class FlowStep:
    """One job of a flow, named by a key unique within the flow."""

    key: str
    job: NewJob
    depends_on: tuple[str, ...] = ()
    """Keys of the steps that must complete first."""


@dataclass(frozen=True, slots=True)
class TreeNode:
    """BullMQ's flow shape: a job and its children, which all run before it."""

    job: NewJob
    children: tuple[TreeNode, ...] = ()


@dataclass(frozen=True, slots=True)
class Edge:
    """``child`` waits for ``parent``; ``settled`` once the parent's outcome was counted."""

    child_id: UUID
    parent_id: UUID
    settled: bool = False


def chain_steps(jobs: Sequence[NewJob]) -> list[FlowStep]:
    """A chain: each job runs after the one before it (keys ``"0"``, ``"1"``, ...)."""
    return [
        FlowStep(str(index), job, () if index == 0 else (str(index - 1),))
        for index, job in enumerate(jobs)
    ]


def tree_steps(root: TreeNode) -> list[FlowStep]:
    """A BullMQ tree: every node depends on its children. Keys are paths: the root is
    ``"0"``, its second child ``"0.1"``."""
    steps: list[FlowStep] = []
    pending: list[tuple[str, TreeNode, int]] = [("0", root, 1)]
    while pending:
        key, node, depth = pending.pop()
        if depth > MAX_TREE_DEPTH:
            raise InvalidFlowError(f"a flow tree nests at most {MAX_TREE_DEPTH} levels deep")
        child_keys = tuple(f"{key}.{index}" for index in range(len(node.children)))
        steps.append(FlowStep(key, node.job, child_keys))
        pending.extend(
            (child_key, child, depth + 1)
            for child_key, child in zip(child_keys, node.children, strict=True)
        )
    return steps


def ordered(steps: Sequence[FlowStep]) -> list[FlowStep]:
    """The steps with every one after those it depends on; InvalidFlowError for an empty or
    too large flow, a repeated key, an unknown or repeated dependency, a step that depends on
    itself, too many parents, or a cycle (named)."""
    by_key = _checked_keys(steps)
    for step in steps:
        _check_step(step, by_key)
    waiting_on = {step.key: len(step.depends_on) for step in steps}
    dependants: dict[str, list[str]] = {step.key: [] for step in steps}
    for step in steps:
        for parent in step.depends_on:
            dependants[parent].append(step.key)
    ready = [step.key for step in steps if not step.depends_on]
    result: list[FlowStep] = []
    while ready:
        key = ready.pop()
        result.append(by_key[key])
        for child in dependants[key]:
            waiting_on[child] -= 1
            if waiting_on[child] == 0:
                ready.append(child)
    if len(result) < len(steps):
        stuck = sorted(key for key, count in waiting_on.items() if count > 0)
        raise InvalidFlowError(f"the flow has a cycle through steps {', '.join(stuck[:10])}")
    return result


def _checked_keys(steps: Sequence[FlowStep]) -> dict[str, FlowStep]:
    if not steps:
        raise InvalidFlowError("a flow needs at least one job")
    if len(steps) > MAX_FLOW_JOBS:
        raise InvalidFlowError(f"a flow has at most {MAX_FLOW_JOBS} jobs, got {len(steps)}")
    by_key: dict[str, FlowStep] = {}
    for step in steps:
        if step.key in by_key:
            raise InvalidFlowError(f"step key '{step.key}' is used twice")
        by_key[step.key] = step
    return by_key


def _check_step(step: FlowStep, by_key: Mapping[str, FlowStep]) -> None:
    if len(step.depends_on) > MAX_PARENTS:
        raise InvalidFlowError(f"step '{step.key}' depends on more than {MAX_PARENTS} jobs")
    if len(set(step.depends_on)) < len(step.depends_on):
        raise InvalidFlowError(f"step '{step.key}' names a dependency twice")
    for parent in step.depends_on:
        if parent == step.key:
            raise InvalidFlowError(f"step '{step.key}' depends on itself")
        if parent not in by_key:
            raise InvalidFlowError(f"step '{step.key}' depends on unknown step '{parent}'")
    if step.job.depends_on:
        raise InvalidFlowError(f"step '{step.key}': name steps of the flow, not job ids")


def check_parent_ids(parent_ids: Sequence[UUID]) -> tuple[UUID, ...]:
    """A create's ``dependsOn``: at most MAX_PARENTS ids, none twice."""
    if len(parent_ids) > MAX_PARENTS:
        raise InvalidFlowError(f"dependsOn names at most {MAX_PARENTS} jobs")
    if len(set(parent_ids)) < len(parent_ids):
        raise InvalidFlowError("dependsOn names a job twice")
    return tuple(parent_ids)


def unknown_parents(parent_ids: Collection[UUID], found: Collection[UUID]) -> InvalidFlowError:
    """The error for a ``dependsOn`` naming jobs that do not exist."""
    missing = sorted(str(job_id) for job_id in set(parent_ids) - set(found))
    return InvalidFlowError(f"dependsOn names jobs that do not exist: {', '.join(missing[:10])}")


def plan_flow(
    steps: Sequence[FlowStep], build: Callable[[NewJob], Job], flow_id: UUID
) -> tuple[dict[str, Job], dict[UUID, tuple[UUID, ...]]]:
    """The rows of a checked flow: each step's job by key (in the flow, with its
    parent-failure rule), and the parents of each job that has some, by job id."""
    jobs = {step.key: build(step.job) for step in ordered(steps)}
    parents_of: dict[UUID, tuple[UUID, ...]] = {}
    for step in steps:
        child = jobs[step.key]
        jobs[step.key] = dataclasses.replace(
            child,
            flow_id=flow_id,
            flow_key=step.key,
            on_parent_failure=step.job.on_parent_failure,
        )
        if step.depends_on:
            parents_of[child.id] = tuple(jobs[parent].id for parent in step.depends_on)
    return jobs, parents_of


def arrivals(
    jobs: Sequence[Job],
    parents_of: Mapping[UUID, Sequence[UUID]],
    existing: Mapping[UUID, JobStatus],
) -> tuple[list[Job], list[Edge]]:
    """New jobs as they are inserted, with their edges: each parent among ``jobs`` marked
    ``has_dependants``; each child waiting, pending or cancelled by the state of its parents
    (new ones unfinished, ``existing`` ones as read under a lock by the inserting
    transaction). InvalidFlowError names parents that are neither."""
    new_ids = {job.id for job in jobs}
    named = {parent for parents in parents_of.values() for parent in parents}
    if named - new_ids - set(existing):
        raise unknown_parents(named - new_ids, existing)
    result: list[Job] = []
    edges: list[Edge] = []
    for new in jobs:
        job = dataclasses.replace(new, has_dependants=True) if new.id in named else new
        if job.id in parents_of:
            states = {p: existing.get(p, JobStatus.WAITING) for p in parents_of[job.id]}
            job, own_edges = with_parents(job, states)
            edges.extend(own_edges)
        result.append(job)
    return result, edges


def _waiting_on(count: int) -> dict[str, Any]:
    """A job with ``count`` unfinished parents waits for them (pending once there are none)."""
    status = JobStatus.WAITING if count else JobStatus.PENDING
    return {"status": status, "pending_parents": count}


def with_parents(job: Job, parents: Mapping[UUID, JobStatus]) -> tuple[Job, list[Edge]]:
    """A new job that depends on existing jobs in these states (read under a lock, in the
    transaction that inserts it): waiting on the unfinished ones; already cancelled when one
    failed or was cancelled (unless it continues); pending when all are done."""
    edges: list[Edge] = []
    unfinished = 0
    cancelled_by: tuple[UUID, JobStatus] | None = None
    for parent_id, status in parents.items():
        settled = status is JobStatus.COMPLETED or (
            status in _ENDED_BADLY and job.on_parent_failure is OnParentFailure.CONTINUE
        )
        if status in _ENDED_BADLY and not settled and cancelled_by is None:
            cancelled_by = (parent_id, status)
        unfinished += not settled
        edges.append(Edge(job.id, parent_id, settled))
    job = dataclasses.replace(job, **_waiting_on(unfinished))
    if cancelled_by is not None:
        job = cancelled_for(job, *cancelled_by)
    return job, edges


def cancelled_for(job: Job, parent_id: UUID, parent_status: JobStatus | None) -> Job:
    """``job``, cancelled because ``parent_id`` ended in ``parent_status``."""
    return dataclasses.replace(
        job,
        status=JobStatus.CANCELLED,
        cancelled_by_parent=parent_id,
        last_error=parent_failure_reason(parent_id, parent_status),
    )


def parent_failure_reason(parent_id: UUID, parent_status: JobStatus | None) -> str:
    """Why a dependant was cancelled: the parent, and how it ended (None: it was deleted)."""
    how = "was deleted" if parent_status is None else _ENDED_BADLY[parent_status]
    return f"cancelled: parent job {parent_id} {how}"


class ChildEffect(enum.Enum):
    """What a parent's failure, cancel or deletion does to one of its waiting children."""

    SETTLE = "settle"
    """Count the parent as finished (``continue``): the child may become pending."""
    CANCEL = "cancel"
    """Cancel the child with the parent's reason; its own dependants follow."""
    NONE = "none"
    """Nothing: the child already ended (cancelled by someone else)."""


def effect_on_child(child_status: JobStatus, policy: OnParentFailure) -> ChildEffect:
    """The rule for a child whose parent failed for good, was cancelled or deleted."""
    if policy is OnParentFailure.CONTINUE:
        return ChildEffect.SETTLE
    if child_status is JobStatus.WAITING:
        return ChildEffect.CANCEL
    return ChildEffect.NONE


def released(child: Job, settled: int) -> Job:
    """``child`` with ``settled`` more parents finished: pending once none is left."""
    left = max(0, (child.pending_parents or 0) - settled)
    status = child.status
    if status is JobStatus.WAITING and left == 0:
        status = JobStatus.PENDING
    return dataclasses.replace(child, pending_parents=left, status=status)


_ACTIVE = frozenset({JobStatus.WAITING, JobStatus.PENDING, JobStatus.PROCESSING})


def flow_status(statuses: Collection[JobStatus]) -> str:
    """A flow's state from its members': ``active`` while one waits, is pending or runs;
    then ``completed`` when all did, ``failed`` when one failed, else ``cancelled``."""
    if any(status in _ACTIVE for status in statuses):
        return "active"
    if all(status is JobStatus.COMPLETED for status in statuses):
        return "completed"
    if JobStatus.FAILED in statuses:
        return "failed"
    return "cancelled"
