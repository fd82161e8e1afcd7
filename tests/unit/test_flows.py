"""The workflow rules: flow shapes, validation, and what a parent's end does to its children."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from jobqueue.domain.flows import (
    MAX_PARENTS,
    MAX_TREE_DEPTH,
    ChildEffect,
    FlowStep,
    InvalidFlowError,
    TreeNode,
    arrivals,
    chain_steps,
    check_parent_ids,
    effect_on_child,
    ordered,
    plan_flow,
    released,
    tree_steps,
    with_parents,
)
from jobqueue.domain.jobs import Job, JobStatus, NewJob, OnParentFailure
from tests.unit.factories import make_job

JOB = NewJob("noop")


def build(new: NewJob) -> Job:
    return make_job(type=new.type, payload=new.payload, on_parent_failure=new.on_parent_failure)


def test_a_chain_runs_each_step_after_the_one_before() -> None:
    steps = chain_steps([NewJob("a"), NewJob("b"), NewJob("c")])
    assert [(step.key, step.depends_on) for step in steps] == [
        ("0", ()),
        ("1", ("0",)),
        ("2", ("1",)),
    ]


def test_a_tree_node_runs_after_all_its_children() -> None:
    leaf = TreeNode(NewJob("leaf"))
    root = TreeNode(NewJob("root"), (TreeNode(NewJob("mid"), (leaf,)), TreeNode(NewJob("x"))))
    steps = {step.key: step for step in tree_steps(root)}
    assert steps["0"].depends_on == ("0.0", "0.1")
    assert steps["0.0"].depends_on == ("0.0.0",)
    assert steps["0.0.0"].job.type == "leaf"
    assert [step.key for step in ordered(list(steps.values()))][-1] == "0"


def test_a_tree_deeper_than_the_limit_is_refused() -> None:
    node = TreeNode(JOB)
    for _ in range(MAX_TREE_DEPTH):
        node = TreeNode(JOB, (node,))
    with pytest.raises(InvalidFlowError, match="nests at most"):
        tree_steps(node)


def test_ordered_puts_parents_first() -> None:
    steps = [FlowStep("c", JOB, ("a", "b")), FlowStep("b", JOB, ("a",)), FlowStep("a", JOB)]
    keys = [step.key for step in ordered(steps)]
    assert keys.index("a") < keys.index("b") < keys.index("c")


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([], "at least one job"),
        ([FlowStep("a", JOB), FlowStep("a", JOB)], "used twice"),
        ([FlowStep("a", JOB, ("a",))], "depends on itself"),
        ([FlowStep("a", JOB, ("zz",))], "unknown step 'zz'"),
        ([FlowStep("a", JOB), FlowStep("b", JOB, ("a", "a"))], "names a dependency twice"),
        (
            [FlowStep("a", JOB, ("c",)), FlowStep("b", JOB, ("a",)), FlowStep("c", JOB, ("b",))],
            "cycle through steps a, b, c",
        ),
        ([FlowStep("a", NewJob("noop", depends_on=(uuid4(),)))], "not job ids"),
    ],
)
def test_flows_that_cannot_run_are_refused(steps: list[FlowStep], message: str) -> None:
    with pytest.raises(InvalidFlowError, match=message):
        ordered(steps)


def test_a_fan_in_above_the_limit_is_refused() -> None:
    parents = [FlowStep(str(n), JOB) for n in range(MAX_PARENTS + 1)]
    fan_in = FlowStep("fan-in", JOB, tuple(step.key for step in parents))
    with pytest.raises(InvalidFlowError, match="more than 1000"):
        ordered([*parents, fan_in])
    with pytest.raises(InvalidFlowError, match="at most 1000"):
        check_parent_ids([uuid4() for _ in range(MAX_PARENTS + 1)])
    same = uuid4()
    with pytest.raises(InvalidFlowError, match="twice"):
        check_parent_ids([same, same])


def test_plan_flow_makes_waiting_children_and_marked_parents() -> None:
    flow_id = uuid4()
    steps = [FlowStep("a", JOB), FlowStep("b", JOB), FlowStep("c", JOB, ("a", "b"))]
    planned, parents_of = plan_flow(steps, build, flow_id)
    jobs, edges = arrivals(list(planned.values()), parents_of, {})
    by_id = {job.id: job for job in jobs}
    a, c = by_id[planned["a"].id], by_id[planned["c"].id]
    assert (c.status, c.pending_parents) == (JobStatus.WAITING, 2)
    assert (a.status, a.pending_parents) == (JobStatus.PENDING, None)
    assert a.has_dependants
    assert not c.has_dependants
    assert {job.flow_id for job in jobs} == {flow_id}
    assert {(edge.child_id, edge.parent_id, edge.settled) for edge in edges} == {
        (c.id, a.id, False),
        (c.id, planned["b"].id, False),
    }


def test_arrivals_refuse_parents_that_do_not_exist() -> None:
    child, missing, known = make_job(), uuid4(), uuid4()
    with pytest.raises(InvalidFlowError, match=f"do not exist: {missing}"):
        arrivals([child], {child.id: (missing, known)}, {known: JobStatus.PENDING})


def statuses(*pairs: tuple[UUID, JobStatus]) -> dict[UUID, JobStatus]:
    return dict(pairs)


def test_a_new_job_waits_for_unfinished_parents_only() -> None:
    done, running = uuid4(), uuid4()
    job, edges = with_parents(
        make_job(), statuses((done, JobStatus.COMPLETED), (running, JobStatus.PROCESSING))
    )
    assert (job.status, job.pending_parents) == (JobStatus.WAITING, 1)
    assert {edge.parent_id: edge.settled for edge in edges} == {done: True, running: False}


def test_a_new_job_whose_parents_all_completed_is_pending() -> None:
    job, _edges = with_parents(make_job(), statuses((uuid4(), JobStatus.COMPLETED)))
    assert (job.status, job.pending_parents) == (JobStatus.PENDING, 0)


def test_a_new_job_of_a_failed_parent_is_cancelled_naming_it_unless_it_continues() -> None:
    failed = uuid4()
    job, _edges = with_parents(make_job(), statuses((failed, JobStatus.FAILED)))
    assert job.status is JobStatus.CANCELLED
    assert job.cancelled_by_parent == failed
    assert job.last_error == f"cancelled: parent job {failed} failed"
    going_on = make_job(on_parent_failure=OnParentFailure.CONTINUE)
    job, edges = with_parents(going_on, statuses((failed, JobStatus.CANCELLED)))
    assert (job.status, job.pending_parents, edges[0].settled) == (JobStatus.PENDING, 0, True)


@pytest.mark.parametrize(
    ("child", "policy", "effect"),
    [
        (JobStatus.WAITING, OnParentFailure.CANCEL, ChildEffect.CANCEL),
        (JobStatus.CANCELLED, OnParentFailure.CANCEL, ChildEffect.NONE),
        (JobStatus.WAITING, OnParentFailure.CONTINUE, ChildEffect.SETTLE),
    ],
)
def test_what_a_failed_parent_does_to_a_child(
    child: JobStatus, policy: OnParentFailure, effect: ChildEffect
) -> None:
    assert effect_on_child(child, policy) is effect


def test_a_child_is_released_when_its_last_parent_finishes() -> None:
    child = make_job(JobStatus.WAITING, pending_parents=2)
    once = released(child, 1)
    assert (once.status, once.pending_parents) == (JobStatus.WAITING, 1)
    twice = released(once, 1)
    assert (twice.status, twice.pending_parents) == (JobStatus.PENDING, 0)
    cancelled = released(make_job(JobStatus.CANCELLED, pending_parents=1), 1)
    assert cancelled.status is JobStatus.CANCELLED
