"""Request and response bodies of the workflow routes (``/api/flows``).

A flow is sent in one of three shapes: BullMQ's FlowProducer tree (a job with ``children``,
which all complete before it runs; ``name``/``data`` accepted for ``type``/``payload``), a
chain (``steps``: each runs after the one before), or a graph (``jobs``, each with a ``key``
and the keys it ``dependsOn``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from pydantic import AliasChoices, AwareDatetime, ConfigDict, Field, model_validator

from jobqueue.api import examples as ex
from jobqueue.api.schemas import CamelModel, JobOut, StorableText
from jobqueue.domain.flows import (
    MAX_FLOW_JOBS,
    MAX_PARENTS,
    FlowStep,
    TreeNode,
    chain_steps,
    tree_steps,
)
from jobqueue.domain.jobs import NewJob, OnParentFailure, utcnow


class FlowJobBody(CamelModel):
    """One job of a flow: what POST /api/jobs takes, ``name``/``data`` allowed as BullMQ
    spells them."""

    type: StorableText = Field(
        min_length=1,
        max_length=100,
        validation_alias=AliasChoices("type", "name"),
        description="Job type (BullMQ's ``name``)",
    )
    payload: dict[str, Any] = Field(
        default_factory=dict,
        validation_alias=AliasChoices("payload", "data"),
        description="Handler input (BullMQ's ``data``)",
    )
    run_at: AwareDatetime | None = Field(default=None, description="Run no earlier than this")
    delay_ms: int | None = Field(default=None, ge=0, le=366 * 86_400_000, description="Delay")
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000, description="Lower runs first")
    max_attempts: int | None = Field(default=None, ge=1, le=100, description="Attempts limit")
    on_parent_failure: OnParentFailure = Field(
        default=OnParentFailure.CANCEL,
        description="When a job it waits for fails for good or is cancelled: cancel this one "
        "too, or continue and run it anyway",
    )

    def to_new_job(self) -> NewJob:
        """The domain request."""
        run_at = self.run_at
        if self.delay_ms is not None:
            run_at = utcnow() + timedelta(milliseconds=self.delay_ms)
        return NewJob(
            type=self.type,
            payload=self.payload,
            run_at=run_at,
            priority=self.priority,
            max_attempts=self.max_attempts,
            on_parent_failure=self.on_parent_failure,
        )


class FlowTreeBody(FlowJobBody):
    """A node of a BullMQ tree: it runs after all its ``children`` completed."""

    children: list[FlowTreeBody] = Field(default_factory=list, max_length=MAX_FLOW_JOBS)

    def to_tree(self) -> TreeNode:
        """The domain tree."""
        return TreeNode(self.to_new_job(), tuple(child.to_tree() for child in self.children))


class FlowGraphJobBody(FlowJobBody):
    """A job of a graph: its ``key`` in the flow and the keys of the jobs it waits for."""

    key: StorableText = Field(min_length=1, max_length=100, description="Unique in the flow")
    depends_on: list[StorableText] = Field(
        default_factory=list, max_length=MAX_PARENTS, description="Keys of jobs of this flow"
    )


class CreateFlowBody(FlowTreeBody):
    """POST /api/flows: a tree (``type``/``name`` and ``children``), or ``steps``, or
    ``jobs``; exactly one of the three."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [ex.TREE_FLOW, ex.CHAIN_FLOW, ex.GRAPH_FLOW]}
    )

    type: StorableText | None = Field(  # type: ignore[assignment]
        default=None,
        min_length=1,
        max_length=100,
        validation_alias=AliasChoices("type", "name"),
        description="A tree's root job type (BullMQ's ``name``)",
    )
    steps: list[FlowJobBody] | None = Field(
        default=None, min_length=1, max_length=MAX_FLOW_JOBS, description="A chain, in order"
    )
    jobs: list[FlowGraphJobBody] | None = Field(
        default=None, min_length=1, max_length=MAX_FLOW_JOBS, description="A graph"
    )

    @model_validator(mode="after")
    def _one_shape(self) -> CreateFlowBody:
        given = [self.type is not None, self.steps is not None, self.jobs is not None]
        if sum(given) != 1:
            raise ValueError("give one of: a tree (type or name, children), steps, or jobs")
        return self

    def to_steps(self) -> list[FlowStep]:
        """The flow as steps with keys: a tree's paths (``0``, ``0.1``), a chain's indexes,
        or a graph's own keys."""
        if self.steps is not None:
            return chain_steps([step.to_new_job() for step in self.steps])
        if self.jobs is not None:
            return [FlowStep(job.key, job.to_new_job(), tuple(job.depends_on)) for job in self.jobs]
        return tree_steps(self.to_tree())


class FlowMemberOut(JobOut):
    """A member of a flow: the job, the ids of the jobs it waits for, and its key in the
    flow's request."""

    depends_on: list[UUID] = Field(description="The jobs it waits for")
    key: str | None = Field(None, description="Its key in the flow's request")


class FlowOut(CamelModel):
    """A flow: its state, how many members are in each status, and every member."""

    id: UUID
    status: str = Field(
        description="active (a member waits, is pending or runs), completed (all did), "
        "failed (one failed for good, none is active) or cancelled"
    )
    counts: dict[str, int] = Field(description="Members in each status")
    jobs: list[FlowMemberOut]
