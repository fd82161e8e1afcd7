"""Workflows through ``jobqueue.client`` against a real ``jobqueue serve`` in each of the three
modes: ``chain``, ``chord``, raw flow bodies, ``get_flow``, ``cancel_flow`` and
``depends_on``. The ``client-add`` handler returns its ``n`` plus its parents' totals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from jobqueue.client import (
    BadRequestError,
    Client,
    Flow,
    FlowStatus,
    JobStatus,
    NotFoundError,
    chain,
    chord,
    group,
    job,
)
from tests.support.client_server import API_KEY, MODES, serve_in_mode, wait_for_status
from tests.support.serve import ServeProcess, wait_until

LATER = timedelta(hours=1)
"""A delay that keeps a job pending for the whole test."""
FAN_OUT = 20


@pytest.fixture(scope="module", params=MODES)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    """One server per mode for every test of this module; each test uses flows of its own."""
    mode: str = request.param
    with serve_in_mode(mode, tmp_path_factory.mktemp(mode)) as process:
        yield process


@pytest.fixture
def client(server: ServeProcess) -> Iterator[Client]:
    with Client(server.base_url, api_key=API_KEY) as jobs:
        yield jobs


def wait_for_flow(client: Client, flow_id: UUID, status: FlowStatus) -> Flow:
    """Poll the flow until it has ``status`` (at most 20 s); fail with its last state."""
    last: list[Flow] = []

    def reached() -> bool:
        last[:] = [client.get_flow(flow_id)]
        return last[0].status == status

    wait_until(reached, 20, f"flow {flow_id} to be {status}", state=lambda: last)
    return last[0]


def test_a_chain_of_five_passes_each_result_to_the_next(client: Client) -> None:
    created = client.create_flow(chain(*(job("client-add", {"n": n}) for n in range(1, 6))))
    assert [member.key for member in created.members] == ["0", "1", "2", "3", "4"]
    assert created.member("4").status == JobStatus.WAITING
    assert created.member("4").pending_parents == 1
    assert created.member("4").depends_on == (created.member("3").id,)
    done = wait_for_flow(client, created.id, FlowStatus.COMPLETED)
    results = [done.member_by_id(created.member(str(i)).id).result for i in range(5)]
    assert results == [
        {"total": 1, "parents": 0},
        {"total": 3, "parents": 1},
        {"total": 6, "parents": 1},
        {"total": 10, "parents": 1},
        {"total": 15, "parents": 1},
    ]
    assert {member.flow_id for member in done.members} == {created.id}
    assert done.counts["completed"] == 5


def test_a_chord_callback_runs_once_with_every_result_of_its_group(client: Client) -> None:
    header = group(job("client-add", {"n": n}) for n in range(FAN_OUT))
    created = client.create_flow(chord(header, job("client-add", {"n": 1000})))
    callback = created.member(str(FAN_OUT))
    assert (callback.status, callback.pending_parents) == (JobStatus.WAITING, FAN_OUT)
    done = wait_for_status(client, callback.id, JobStatus.COMPLETED, timeout=30)
    assert done.result == {"total": 1000 + sum(range(FAN_OUT)), "parents": FAN_OUT}
    assert len(client.attempts(callback.id)) == 1
    assert wait_for_flow(client, created.id, FlowStatus.COMPLETED).counts["completed"] == 21


def test_a_raw_steps_body_is_sent_as_given(client: Client) -> None:
    created = client.create_flow(
        {"steps": [{"type": "client-add", "payload": {"n": 2}}, {"type": "client-add"}]}
    )
    last = wait_for_status(client, created.member("1").id, JobStatus.COMPLETED)
    assert last.result == {"total": 2, "parents": 1}


def test_cancel_flow_cancels_what_has_not_finished_and_can_be_sent_again(client: Client) -> None:
    created = client.create_flow(chain(job("client-later", delay=LATER), job("client-add")))
    assert created.status == FlowStatus.ACTIVE
    cancelled = client.cancel_flow(created.id)
    assert cancelled.status == FlowStatus.CANCELLED
    assert {member.status for member in cancelled.members} == {JobStatus.CANCELLED}
    assert cancelled.counts["cancelled"] == 2
    again = client.cancel_flow(created.id)
    assert again.status == FlowStatus.CANCELLED
    assert client.get_flow(created.id).counts == cancelled.counts


def test_flow_errors_are_the_servers(client: Client) -> None:
    with pytest.raises(NotFoundError, match="Flow not found"):
        client.get_flow(uuid4())
    with pytest.raises(NotFoundError):
        client.cancel_flow(uuid4())
    cycle = {
        "jobs": [
            {"key": "a", "type": "client-add", "dependsOn": ["b"]},
            {"key": "b", "type": "client-add", "dependsOn": ["a"]},
        ]
    }
    with pytest.raises(BadRequestError, match="cycle"):
        client.create_flow(cycle)


def test_a_job_created_with_depends_on_waits_for_its_parent(client: Client) -> None:
    parent = client.create("client-add", {"n": 5}, delay=LATER)
    child = client.create("client-add", {"n": 1}, depends_on=[parent.id])
    assert (child.status, child.pending_parents, child.flow_id) == (JobStatus.WAITING, 1, None)
    assert client.stats().waiting >= 1
    assert child.id in {waiting.id for waiting in client.iter_jobs(status="waiting")}
    client.update(parent.id, next_run_at=None)
    done = wait_for_status(client, child.id, JobStatus.COMPLETED)
    assert done.result == {"total": 6, "parents": 1}


def test_a_dependant_that_continues_runs_after_its_parent_failed(client: Client) -> None:
    parent = client.create("client-fail")
    goes_on = client.create("client-add", depends_on=[parent.id], on_parent_failure="continue")
    stops = client.create("client-add", depends_on=[parent.id])
    assert goes_on.on_parent_failure == "continue"
    assert stops.on_parent_failure == "cancel"
    done = wait_for_status(client, goes_on.id, JobStatus.COMPLETED)
    assert done.result == {"total": 0, "parents": 1}
    cancelled = wait_for_status(client, stops.id, JobStatus.CANCELLED)
    assert cancelled.last_error == f"cancelled: parent job {parent.id} failed"
