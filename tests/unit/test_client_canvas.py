"""chain, group and chord become the graph that POST /api/flows takes: who waits for whom."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from jobqueue.client.canvas import chain, chord, flow_body, group, job


def edges(canvas_body: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    """Each key's job type and the keys it waits for."""
    return {item["key"]: (item["type"], item["dependsOn"]) for item in canvas_body["jobs"]}


def test_a_chain_waits_step_by_step() -> None:
    body = flow_body(chain(job("resize", {"image": 7}), job("index"), job("notify")))
    assert edges(body) == {
        "0": ("resize", []),
        "1": ("index", ["0"]),
        "2": ("notify", ["1"]),
    }
    assert body["jobs"][0]["payload"] == {"image": 7}


def test_a_chord_runs_its_callback_after_every_member() -> None:
    body = flow_body(chord((job("send", {"to": n}) for n in range(3)), job("report")))
    assert edges(body) == {
        "0": ("send", []),
        "1": ("send", []),
        "2": ("send", []),
        "3": ("report", ["0", "1", "2"]),
    }


def test_a_group_inside_a_chain_fans_out_and_back_in() -> None:
    body = flow_body(chain(job("charge"), group(job("ship"), job("invoice")), job("close")))
    assert edges(body) == {
        "0": ("charge", []),
        "1": ("ship", ["0"]),
        "2": ("invoice", ["0"]),
        "3": ("close", ["1", "2"]),
    }


def test_chains_in_a_group_run_side_by_side_each_in_order() -> None:
    body = flow_body(group(chain(job("a"), job("b")), chain(job("c"), job("d"))))
    assert edges(body) == {"0": ("a", []), "1": ("b", ["0"]), "2": ("c", []), "3": ("d", ["2"])}


def test_a_chord_after_a_step_waits_for_it_too() -> None:
    body = flow_body(chain(job("fetch"), chord([job("part"), job("part")], job("merge"))))
    assert edges(body) == {
        "0": ("fetch", []),
        "1": ("part", ["0"]),
        "2": ("part", ["0"]),
        "3": ("merge", ["1", "2"]),
    }


def test_options_travel_with_each_job() -> None:
    step = job(
        "report",
        max_attempts=2,
        priority=3,
        delay=timedelta(seconds=1.5),
        on_parent_failure="continue",
    )
    (item,) = flow_body(step)["jobs"]
    assert item == {
        "key": "0",
        "type": "report",
        "payload": {},
        "maxAttempts": 2,
        "priority": 3,
        "delayMs": 1500,
        "onParentFailure": "continue",
        "dependsOn": [],
    }


@pytest.mark.parametrize("empty", [group, chain, lambda: chord([], job("x"))])
def test_an_empty_group_or_chain_is_refused(empty: Any) -> None:
    with pytest.raises(ValueError, match="at least one part"):
        empty()
