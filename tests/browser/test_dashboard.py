"""The dashboard in headless Chromium against a real ``jobqueue serve``, driven as an operator.

Jobs are made over HTTP while the page is open; the page is only looked at and clicked.
Waits are Playwright's bounded ``expect`` polls: the page polls the API every 4 s (counts,
running jobs, the table, an open job) and every 15 s (failed jobs, the dead-letter queue), as
the Node service's README recommends, so a change shows within about one interval.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from playwright.sync_api import Locator, Page, Request, expect

from tests.browser.conftest import HANDLERS
from tests.support.serve import Json, ServeFactory, ServeProcess, wait_until

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
SHOWN_WITHIN_MS = 15_000
"""Bound for a change to show: a few 4 s polls on a loaded machine."""
SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=1">'
DASH = "\N{EN DASH}"


def open_board(page: Page, server: ServeProcess) -> None:
    """Load / (redirected to /dashboard) and wait for the first counts."""
    page.goto(f"{server.base_url}/")
    expect(page).to_have_url(f"{server.base_url}/dashboard")
    expect(page.locator("#board")).to_be_visible()
    expect(count_of(page, "completed")).not_to_have_text("")


def count_of(page: Page, status: str) -> Locator:
    """The number on a status's card."""
    return page.locator(f'#counts [data-status="{status}"] .count-value')


def row_of(page: Page, job: Json) -> Locator:
    """A job's row in the table."""
    return page.locator(f'#job-rows tr[data-id="{job["id"]}"]')


def stats(server: ServeProcess) -> dict[str, int]:
    """GET /api/jobs/stats (no key)."""
    answer: dict[str, int] = server.client.get("/api/jobs/stats").json()
    return answer


def failing_job(server: ServeProcess, switch: Path, message: str, **payload: str) -> Json:
    """A job that fails for good (one attempt) until ``switch`` exists; waits until failed."""
    body = {**payload, "switch": str(switch), "message": message}
    job = server.create_job("switched", body, maxAttempts=1)
    server.wait_for_status(job["id"], "failed")
    return job


def test_screenshot_of_a_busy_board(page: Page, board_server: ServeProcess, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    try:
        failing_job(board_server, tmp_path / "off", "SMTP server said 451: try again later")
        board_server.create_job("ok", {"report": "weekly"}, delayMs=3_600_000)
        open_board(page, board_server)
        # Made while the page is open, so that the chart has bars to show.
        before = stats(board_server)
        for n in range(1, 7):
            board_server.create_job("ok", {"to": f"user{n}@example.com", "template": "welcome"})
        failing_job(board_server, tmp_path / "off", "connection reset by peer")
        running = board_server.create_job("gated", {"gate": str(gate), "report": "monthly"})
        expect(page.locator(f'#running li[data-id="{running["id"]}"]')).to_contain_text(
            "waiting for the gate", timeout=SHOWN_WITHIN_MS
        )
        expect(count_of(page, "completed")).to_have_text(str(before["completed"] + 6))
        expect(count_of(page, "failed")).to_have_text(str(before["failed"] + 1))
        shot = tmp_path / "dashboard.png"
        page.screenshot(path=shot, full_page=True)
        assert shot.stat().st_size > 10_000
        if os.environ.get("UPDATE_SCREENSHOT") == "1":
            shutil.copyfile(shot, SCREENSHOT)
    finally:
        gate.touch()


def test_counts_follow_jobs_as_they_complete(page: Page, board_server: ServeProcess) -> None:
    open_board(page, board_server)
    before = stats(board_server)["completed"]
    expect(count_of(page, "completed")).to_have_text(str(before))

    jobs = [board_server.create_job("ok", {"n": n}) for n in range(3)]

    expect(count_of(page, "completed")).to_have_text(str(before + 3), timeout=SHOWN_WITHIN_MS)
    expect(page.locator("#rate-totals")).to_contain_text("+3 completed")
    for job in jobs:
        expect(row_of(page, job)).to_have_attribute("data-status", "completed")


def test_a_failed_job_is_retried_from_its_detail(
    page: Page, board_server: ServeProcess, tmp_path: Path
) -> None:
    switch = tmp_path / "switch"
    job = failing_job(board_server, switch, "upstream said no")
    open_board(page, board_server)

    row_of(page, job).click()
    detail = page.locator("#detail")
    expect(detail.locator("#detail-title")).to_contain_text("failed")
    expect(detail.locator("pre.error")).to_contain_text("RuntimeError: upstream said no")
    expect(detail.locator(".attempts tbody tr")).to_have_count(1)
    expect(detail.get_by_role("button", name="Cancel")).to_be_hidden()

    switch.touch()
    detail.get_by_role("button", name="Retry").click()

    expect(detail.locator("#detail-title")).to_contain_text("completed", timeout=SHOWN_WITHIN_MS)
    expect(detail.get_by_role("button", name="Retry")).to_be_hidden()
    assert board_server.get_job(job["id"]).json()["status"] == "completed"


def test_retry_all_failed_asks_first_then_retries_them(
    page: Page, board_server: ServeProcess, tmp_path: Path
) -> None:
    switch = tmp_path / "switch"
    jobs = [failing_job(board_server, switch, "not yet") for _ in range(2)]
    open_board(page, board_server)
    failed = stats(board_server)["failed"]
    expect(count_of(page, "failed")).to_have_text(str(failed))
    asked: list[str] = []
    page.on(
        "request",
        lambda request: asked.append(request.url) if "retry-failed" in request.url else None,
    )

    page.get_by_role("button", name="Retry all failed…").click()
    dialog = page.locator("#confirm")
    expect(dialog).to_contain_text(f"{failed} failed job(s) of every type go back to pending")
    dialog.get_by_role("button", name="Keep as is").click()
    expect(dialog).to_be_hidden()
    assert (asked, stats(board_server)["failed"]) == ([], failed)

    switch.touch()
    page.get_by_role("button", name="Retry all failed…").click()
    dialog.get_by_role("button", name=f"Retry {failed} failed job(s)").click()

    expect(page.locator("#toasts")).to_contain_text(f"{failed} failed job(s) sent back to pending")
    for job in jobs:
        expect(row_of(page, job)).to_have_attribute(
            "data-status", "completed", timeout=SHOWN_WITHIN_MS
        )


def test_hostile_values_show_as_text(
    page: Page, board_server: ServeProcess, tmp_path: Path
) -> None:
    job = failing_job(board_server, tmp_path / "never", IMG, note=SCRIPT)
    open_board(page, board_server)

    expect(page.locator(f'#dlq li[data-id="{job["id"]}"]')).to_contain_text(IMG)
    expect(page.locator(f'#failed li[data-id="{job["id"]}"]')).to_contain_text(IMG)
    expect(row_of(page, job).locator(".preview")).to_contain_text("<script>window.__pwned")
    row_of(page, job).click()
    expect(page.locator("#detail pre.error")).to_contain_text(IMG)
    expect(page.locator("#detail pre").nth(1)).to_contain_text(SCRIPT)

    assert page.evaluate("typeof window.__pwned") == "undefined"
    expect(page.locator("#board img, #detail img, #confirm img")).to_have_count(0)
    expect(page.locator("script")).to_have_count(1)  # the page's own module, nothing added


# Records each fetch the page starts, synchronously, and how many are unfinished (body read).
RECORD_FETCHES = """
window.__calls = [];
window.__inFlight = 0;
const realFetch = window.fetch.bind(window);
window.fetch = async (input, init) => {
  window.__calls.push(String(input));
  window.__inFlight += 1;
  try {
    const response = await realFetch(input, init);
    await response.clone().arrayBuffer();
    return response;
  } finally {
    window.__inFlight -= 1;
  }
};
"""
SET_VISIBILITY = """(state) => {
  Object.defineProperty(document, "visibilityState", { configurable: true, get: () => state });
  document.dispatchEvent(new Event("visibilitychange"));
}"""
NEXT_TASK = """() => new Promise((done) => {
  const channel = new MessageChannel();
  channel.port1.onmessage = done;
  channel.port2.postMessage(0);
})"""


TABLE = "/api/jobs?limit=50&offset=0"
RUNNING = "/api/jobs?status=processing&limit=10"
FAILED = "/api/jobs?status=failed&limit=10"
DEAD_LETTERS = "/api/dlq?limit=10"


def settle(page: Page) -> None:
    """Wait until the page's fetches have answered and their tasks scheduled their next runs."""
    wait_until(lambda: page.evaluate("window.__inFlight") == 0, 10, "the page's fetches")
    page.evaluate(NEXT_TASK)


def calls_during(page: Page, action: str, *arguments: object) -> list[str]:
    """The paths the page fetched while ``action`` (a page function) ran; settled after."""
    page.evaluate("window.__calls = []")
    page.evaluate(action, *arguments)
    calls: list[str] = page.evaluate("window.__calls")
    settle(page)
    return calls


def calls_over(page: Page, ms: int) -> list[str]:
    """The paths the page fetched while its (paused) clock ran ``ms`` on; settled after."""
    page.evaluate("window.__calls = []")
    page.clock.run_for(ms)
    calls: list[str] = page.evaluate("window.__calls")
    settle(page)
    return calls


def test_polling_pauses_while_hidden_and_keeps_the_recommended_pace(
    page: Page, board_server: ServeProcess
) -> None:
    page.add_init_script(RECORD_FETCHES)
    page.clock.install()
    open_board(page, board_server)
    settle(page)
    page.clock.pause_at(page.evaluate("Date.now()") + 1_000)

    calls_during(page, SET_VISIBILITY, "hidden")
    assert calls_over(page, 60_000) == []

    shown = calls_during(page, SET_VISIBILITY, "visible")
    assert set(shown) == {"/api/jobs/stats", TABLE, RUNNING, FAILED, DEAD_LETTERS}, shown

    four_seconds_on = calls_over(page, 4_000)
    assert set(four_seconds_on) == {"/api/jobs/stats", TABLE, RUNNING}, four_seconds_on
    fifteen_seconds_on = calls_over(page, 11_000)
    assert {FAILED, DEAD_LETTERS} <= set(fifteen_seconds_on), fifteen_seconds_on


def test_a_key_is_asked_for_and_nothing_shows_without_it(page: Page, serve: ServeFactory) -> None:
    server = serve(**HANDLERS, API_KEYS="right-key")
    created = server.client.post(
        "/api/jobs", json={"type": "ok"}, headers={"Authorization": "Bearer right-key"}
    )
    assert created.status_code == 201, created.text
    answers: list[int] = []
    page.on(
        "response",
        lambda response: answers.append(response.status) if "/api/" in response.url else None,
    )
    sent_keys: list[str | None] = []
    page.on("request", lambda request: _note_key(request, sent_keys))

    page.goto(f"{server.base_url}/dashboard")
    prompt = page.locator("#key-prompt")
    expect(prompt).to_be_visible()
    expect(page.locator("#key-message")).to_be_hidden()
    expect(page.locator("#board")).to_be_hidden()
    expect(page.locator("#counts > *, #job-rows > *")).to_have_count(0)

    page.locator("#key-input").fill("wrong-key")
    page.get_by_role("button", name="Open the dashboard").click()
    expect(page.locator("#key-message")).to_contain_text("refused that key (401)")
    expect(prompt).to_be_visible()
    expect(page.locator("#board")).to_be_hidden()
    expect(page.locator("#counts > *, #job-rows > *")).to_have_count(0)
    assert answers, "the page asked nothing"
    assert set(answers) == {401}, answers

    page.locator("#key-input").fill("right-key")
    page.get_by_role("button", name="Open the dashboard").click()
    expect(count_of(page, "completed")).to_have_text("1", timeout=SHOWN_WITHIN_MS)
    expect(prompt).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('jobqueue.apiKey')") == "right-key"
    assert sent_keys[-1] == "Bearer right-key", sent_keys


def _note_key(request: Request, keys: list[str | None]) -> None:
    if "/api/" in request.url:
        keys.append(request.headers.get("authorization"))


def test_a_pending_job_is_cancelled_then_deleted_from_its_detail(
    page: Page, board_server: ServeProcess
) -> None:
    job = board_server.create_job("ok", {"later": True}, delayMs=3_600_000)
    open_board(page, board_server)
    row_of(page, job).click()
    detail = page.locator("#detail")
    expect(detail.locator("#detail-title")).to_contain_text("pending")
    expect(detail.get_by_role("button", name="Retry")).to_be_hidden()

    detail.get_by_role("button", name="Cancel").click()
    page.locator("#confirm").get_by_role("button", name="Cancel the job").click()
    expect(detail.locator("#detail-title")).to_contain_text("cancelled")
    assert board_server.get_job(job["id"]).json()["status"] == "cancelled"

    detail.get_by_role("button", name="Delete…").click()
    confirm = page.locator("#confirm")
    expect(confirm).to_contain_text("removed for good")
    confirm.get_by_role("button", name="Delete the job").click()
    expect(detail).to_be_hidden()
    expect(row_of(page, job)).to_have_count(0)
    assert board_server.get_job(job["id"]).status_code == 404


def test_the_table_filters_by_status_and_type_and_pages(
    page: Page, board_server: ServeProcess
) -> None:
    later = [{"type": "ok", "payload": {"n": n}, "delayMs": 3_600_000} for n in range(30)]
    created = board_server.client.post("/api/jobs/batch", json={"jobs": later})
    assert created.status_code == 201, created.text
    open_board(page, board_server)
    pending = stats(board_server)["pending"]
    rows = page.locator("#job-rows tr")

    page.locator("#filter-status").select_option("pending")
    page.locator("#page-size").select_option("25")
    expect(rows).to_have_count(25)
    expect(page.locator("#page-info")).to_have_text(f"1{DASH}25 of {pending}")
    expect(page.locator('#job-rows tr:not([data-status="pending"])')).to_have_count(0)
    newest = rows.first.get_attribute("data-id")

    page.locator("#page-next").click()
    expect(page.locator("#page-info")).to_have_text(f"26{DASH}{pending} of {pending}")
    expect(rows).to_have_count(pending - 25)
    page.locator("#page-prev").click()
    expect(rows.first).to_have_attribute("data-id", newest)

    page.locator("#filter-type").fill("gated")
    expect(page.locator('#job-rows tr:not([data-status="pending"])')).to_have_count(0)
    expect(page.locator("#job-rows")).to_contain_text("No jobs match.")


RATES_SCRIPT = """async () => {
  const { RateTracker, SHOWN_MINUTES } = await import("/dashboard/rates.js");
  const minute = 60_000;
  const start = 100 * minute;
  const tracker = new RateTracker(start);
  tracker.sample({ completed: 10, failed: 2 }, start);  // the baseline: counts nothing
  tracker.sample({ completed: 14, failed: 3 }, start + 4_000);
  tracker.sample({ completed: 12, failed: 1 }, start + 8_000);  // a prune and a retry: no fall
  tracker.sample({ completed: 15, failed: 1 }, start + minute);  // +3 in the next minute
  tracker.pause();  // hidden: what changes meanwhile is not counted
  tracker.sample({ completed: 40, failed: 9 }, start + 5 * minute);
  tracker.sample({ completed: 41, failed: 9 }, start + 5 * minute + 4_000);
  const series = tracker.series(start + 5 * minute + 4_000);
  return {
    shown: SHOWN_MINUTES,
    totals: tracker.totals,
    bins: series.slice(-6).map(({ bin }) => bin),
  };
}"""


def test_rates_count_rises_only_and_skip_hidden_stretches(
    page: Page, board_server: ServeProcess
) -> None:
    open_board(page, board_server)
    result = page.evaluate(RATES_SCRIPT)
    assert result["totals"] == {"completed": 8, "failed": 1}
    assert result["bins"] == [
        {"completed": 4, "failed": 1},
        {"completed": 3, "failed": 0},
        None,
        None,
        None,
        {"completed": 1, "failed": 0},
    ]
    assert result["shown"] == 15


def create_flow(server: ServeProcess, *members: Json) -> dict[str, Json]:
    """POST /api/flows as a graph: the flow's members by key, each with ``flowId``."""
    created = server.client.post("/api/flows", json={"jobs": list(members)})
    assert created.status_code == 201, created.text
    return {member["key"]: member for member in created.json()["jobs"]}


def gated_chain(server: ServeProcess, gate: Path) -> dict[str, Json]:
    """A flow of two: ``gate`` (runs until the file ``gate`` exists), then ``child``."""
    return create_flow(
        server,
        {"key": "gate", "type": "gated", "payload": {"gate": str(gate)}},
        {"key": "child", "type": "ok", "payload": {"step": 2}, "dependsOn": ["gate"]},
    )


def member_row(page: Page, job: Json) -> Locator:
    """A flow member's row in the open detail's Flow section."""
    return page.locator(f'#detail .members tr[data-id="{job["id"]}"]')


def test_a_waiting_child_shows_its_flow_then_runs_when_its_parent_completes(
    page: Page, board_server: ServeProcess, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    try:
        flow = gated_chain(board_server, gate)
        parent, child = flow["gate"], flow["child"]
        open_board(page, board_server)
        expect(count_of(page, "waiting")).to_have_text(str(stats(board_server)["waiting"]))
        page.locator("#filter-status").select_option("waiting")
        row_of(page, child).click()

        detail = page.locator("#detail")
        expect(detail.locator("#detail-title")).to_contain_text("waiting")
        expect(detail).to_contain_text("1 parent(s) not completed yet")
        expect(detail).to_contain_text("cancel (it is cancelled too)")
        expect(detail.get_by_role("button", name="Cancel", exact=True)).to_be_visible()
        expect(detail.locator(".flow-summary")).to_contain_text("active")
        expect(detail.locator(".members tbody tr")).to_have_count(2)
        expect(member_row(page, child)).to_contain_text("this job")
        expect(member_row(page, child).locator("td").first).to_contain_text("child")
        expect(member_row(page, child).locator("td").nth(3)).to_have_text("gate")  # its key
        expect(member_row(page, parent).locator(".badge")).to_have_text("processing")

        gate.touch()
        expect(detail.locator("#detail-title")).to_contain_text(
            "completed", timeout=SHOWN_WITHIN_MS
        )
        expect(detail).to_contain_text("none: every parent has finished")
        expect(detail.locator(".flow-summary")).to_contain_text("2 completed")
        expect(detail.get_by_role("button", name="Cancel flow…")).to_have_count(0)
    finally:
        gate.touch()


def test_a_flow_is_cancelled_from_a_members_detail_after_a_confirmation(
    page: Page, board_server: ServeProcess, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    try:
        flow = gated_chain(board_server, gate)
        parent, child = flow["gate"], flow["child"]
        open_board(page, board_server)
        row_of(page, child).click()
        detail = page.locator("#detail")
        member_row(page, parent).click()
        expect(detail.locator("#detail-title")).to_contain_text("gated")

        detail.get_by_role("button", name="Cancel flow…").click()
        confirm = page.locator("#confirm")
        expect(confirm).to_contain_text("2 member(s) not finished yet are cancelled")
        confirm.get_by_role("button", name="Cancel the flow").click()

        expect(detail.locator("#detail-title")).to_contain_text("cancelled")
        expect(detail.locator(".flow-summary")).to_contain_text("2 cancelled")
        expect(detail.get_by_role("button", name="Cancel flow…")).to_have_count(0)
        assert board_server.get_job(child["id"]).json()["status"] == "cancelled"
    finally:
        gate.touch()


def test_hostile_values_in_a_flow_show_as_text(page: Page, board_server: ServeProcess) -> None:
    # The parent waits an hour, so the child keeps waiting on it.
    flow = create_flow(
        board_server,
        {"key": IMG, "type": "ok", "payload": {"note": SCRIPT}, "delayMs": 3_600_000},
        {"key": SCRIPT, "type": "ok", "payload": {"note": IMG}, "dependsOn": [IMG]},
    )
    parent, child = flow[IMG], flow[SCRIPT]
    open_board(page, board_server)
    row_of(page, child).click()
    expect(page.locator("#detail pre")).to_contain_text("<img src=x onerror=")  # JSON: \"
    expect(member_row(page, child).locator("td").first).to_contain_text(SCRIPT)  # as text
    expect(member_row(page, child).locator("td").nth(3)).to_have_text(IMG)

    member_row(page, parent).click()
    expect(page.locator("#detail pre")).to_contain_text(SCRIPT)
    expect(member_row(page, parent)).to_contain_text("this job")

    assert page.evaluate("typeof window.__pwned") == "undefined"
    expect(page.locator("#board img, #detail img, #confirm img")).to_have_count(0)
    expect(page.locator("script")).to_have_count(1)
