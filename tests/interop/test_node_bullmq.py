"""Interop: what this service puts on `job-queue` and `job-dlq` reads back the same through
Node BullMQ (the npm package `bullmq`, pinned in node/package.json)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from jobqueue.queue.bullmq_wire import PRIORITY_OFFSET
from tests.integration.conftest import RedisMode, running_service
from tests.services import unavailable

NODE_DIR = Path(__file__).parent / "node"
NPM_TIMEOUT_S = 300


def _installed_as_pinned() -> bool:
    """True when node_modules holds exactly the versions package.json pins."""
    pinned = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]
    for name, version in pinned.items():
        manifest = NODE_DIR / "node_modules" / name / "package.json"
        if not manifest.exists() or json.loads(manifest.read_text())["version"] != version:
            return False
    return True


@pytest.fixture(scope="session")
def node() -> str:
    """The node binary, with the pinned bullmq installed by ``npm ci`` from the lock file."""
    node_bin, npm_bin = shutil.which("node"), shutil.which("npm")
    if node_bin is None or npm_bin is None:
        unavailable("node and npm are needed for the Node BullMQ interop test")
        raise AssertionError("unreachable")
    if not _installed_as_pinned():
        try:
            subprocess.run(
                [npm_bin, "ci", "--no-audit", "--no-fund"],
                cwd=NODE_DIR,
                check=True,
                capture_output=True,
                timeout=NPM_TIMEOUT_S,
                env={**os.environ, "NO_UPDATE_NOTIFIER": "1"},
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            unavailable(f"npm ci failed in {NODE_DIR}: {detail.decode(errors='replace')[-500:]}")
    return node_bin


def read_back(node: str, redis_url: str, job_id: str) -> dict[str, Any]:
    """Run the Node script against ``redis_url`` and parse what it printed."""
    done = subprocess.run(
        [node, "read_back.mjs", redis_url, job_id],
        cwd=NODE_DIR,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


async def test_node_bullmq_reads_our_job_and_dlq_entry(node: str, redis_mode: RedisMode) -> None:
    async with running_service(redis_mode.settings()) as svc:
        job = await svc.create("flaky", {"to": "a@b.c"}, priority=3, runAt="2999-01-01T00:00:00Z")
        dead = await svc.create("permanent", {"n": 7})
        await svc.wait_for(dead["id"], "failed")
        api_dlq = (await svc.client.get("/api/dlq")).json()
    seen = read_back(node, redis_mode.redis_url, job["id"])
    node_job = seen["job"]
    assert (node_job["id"], node_job["name"], node_job["state"]) == (job["id"], "flaky", "delayed")
    assert node_job["data"] == {"jobId": job["id"], "type": "flaky", "payload": {"to": "a@b.c"}}
    assert node_job["opts"]["attempts"] == 5
    assert node_job["opts"]["backoff"] == {"type": "exponential", "delay": 50}
    assert node_job["opts"]["priority"] == PRIORITY_OFFSET + 3
    assert node_job["attemptsMade"] == 0
    assert seen["dlq"] == [{"name": "permanent", "data": api_dlq[0]}]
    assert set(api_dlq[0]) == {"jobId", "type", "payload", "reason", "attempts", "failedAt"}
    assert (api_dlq[0]["jobId"], api_dlq[0]["attempts"]) == (dead["id"], 1)
