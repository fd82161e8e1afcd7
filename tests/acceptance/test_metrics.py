"""/metrics of a real ``jobqueue serve`` whose worker runs in a process of its own: the counts
made in the worker process reach the API process's scrape."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.serve import (
    JOBQUEUE,
    LOOPBACK,
    ServeFactory,
    ServeProcess,
    free_port,
    serve_env,
    wait_until,
)
from tests.support.target import WebhookTarget

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Prometheus's text format: each sample's value by its name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(server: ServeProcess, **headers: str) -> Samples:
    """GET /metrics, parsed."""
    response = server.client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when the series does not exist)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_add_up_the_worker_processes_counts(
    serve: ServeFactory, webhook_target: WebhookTarget
) -> None:
    webhook_target.script([500, 500, 500, 500], then=200)
    server = serve(WORKER_PROCESSES="1", JOB_BACKOFF_MS="50")
    done = [server.create_job("noop") for _ in range(3)]
    failing = [
        server.create_job("webhook", {"url": webhook_target.url}, maxAttempts=2) for _ in range(2)
    ]
    later = server.create_job("noop", runAt="2999-01-01T00:00:00Z")
    for job in done:
        server.wait_for_status(job["id"], "completed")
    for job in failing:
        server.wait_for_status(job["id"], "failed", attempts=2)

    samples = scrape(server)
    assert value(samples, "jobqueue_jobs_created_total", type="noop") == 4
    assert value(samples, "jobqueue_jobs_created_total", type="webhook") == 2
    assert value(samples, "jobqueue_jobs_completed_total", type="noop") == 3
    assert value(samples, "jobqueue_jobs_retried_total", type="webhook") == 2
    assert value(samples, "jobqueue_jobs_failed_total", type="webhook") == 2
    assert value(samples, "jobqueue_attempt_duration_seconds_count", type="noop") == 3
    assert value(samples, "jobqueue_attempt_duration_seconds_count", type="webhook") == 4
    every = value(samples, "jobqueue_attempt_duration_seconds_bucket", type="noop", le="+Inf")
    assert every == 3
    assert value(samples, "jobqueue_jobs", status="completed") == 3
    assert value(samples, "jobqueue_jobs", status="failed") == 2
    assert value(samples, "jobqueue_jobs", status="pending") == 1  # ``later``, not due
    assert value(samples, "jobqueue_oldest_pending_age_seconds") == 0
    assert later["status"] == "pending"


def test_the_oldest_due_pending_job_shows_its_wait(serve: ServeFactory) -> None:
    # No handler for this type in the worker: the job stays pending and waits.
    server = serve(WORKER_PROCESSES="1", ACCEPT_UNKNOWN_TYPES="true")
    server.create_job("nobody-runs-this")

    def waited() -> bool:
        return value(scrape(server), "jobqueue_oldest_pending_age_seconds") >= 1

    wait_until(waited, 10, "the oldest pending job to have waited a second")
    assert value(scrape(server), "jobqueue_jobs", status="pending") == 1


def test_metrics_need_the_api_key_unless_public(serve: ServeFactory) -> None:
    guarded = serve(API_KEYS="k1", WORKER_PROCESSES="0")
    assert guarded.client.get("/metrics").status_code == 401
    assert scrape(guarded, authorization="Bearer k1")
    public = serve(API_KEYS="k1", METRICS_PUBLIC="true", WORKER_PROCESSES="0")
    assert scrape(public)
    assert public.client.get("/api/jobs").status_code == 401


def test_a_standalone_worker_serves_its_own_counts(serve: ServeFactory, tmp_path: Path) -> None:
    api = serve("api")
    job = api.create_job("noop")
    port = free_port()
    env = serve_env(tmp_path, {"METRICS_PORT": str(port), "HOST": LOOPBACK})
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [str(JOBQUEUE), "worker"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://{LOOPBACK}:{port}/metrics"
    seen: Samples = {}

    def counted() -> bool:
        nonlocal seen
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()
        try:
            seen = parse(httpx.get(url, timeout=1, trust_env=False).text)
        except httpx.TransportError:
            return False
        return value(seen, "jobqueue_jobs_completed_total", type="noop") == 1

    try:
        wait_until(counted, 15, "the worker's metrics to count the job", state=lambda: seen)
    finally:
        worker.terminate()
        worker.wait(10)
        log.close()
    api.wait_for_status(job["id"], "completed")
    assert value(seen, "jobqueue_attempt_duration_seconds_count", type="noop") == 1
    # The queue's state is the API's to report: a worker's scrape does not repeat it.
    assert not any(name == "jobqueue_jobs" for name, _labels in seen)


def test_the_monitoring_docs_curl_example_scrapes_with_a_key(serve: ServeFactory) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "monitoring.md").read_text()
    match = re.search(r"```sh\n(.*?)```", text, re.DOTALL)
    assert match, "docs/monitoring.md has no sh example"
    server = serve(API_KEYS="secret-1", WORKER_PROCESSES="0")
    script = match.group(1).replace("http://127.0.0.1:3000", server.base_url)
    result = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env={"PATH": "/usr/bin:/bin", "NO_PROXY": "*", "JOBQUEUE_KEY": "secret-1"},
    )
    assert value(parse(result.stdout), "jobqueue_jobs", status="pending") == 0
    assert "jobqueue_oldest_pending_age_seconds 0.0" in result.stdout
