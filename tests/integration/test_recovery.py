"""A dead worker's jobs: rerun when attempts remain, failed into the DLQ when not."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from uuid import UUID

from jobqueue.domain.jobs import JobStatus, utcnow
from jobqueue.service import LEASE_EXPIRED
from tests.integration.conftest import make_settings, running_service


async def _claim_and_abandon(url: str, tmp_path: Path, max_attempts: int) -> UUID:
    """Create a job and claim it with a lease that has already run out, as a killed worker."""
    async with running_service(make_settings(url, tmp_path), worker=False) as svc:
        job = await svc.create("flaky", maxAttempts=max_attempts)
        store = svc.runtime.store
        claimed = await store.claim("dead-worker", 1, utcnow() - timedelta(seconds=1))
        assert [str(c.id) for c in claimed] == [job["id"]]
        return claimed[0].id


async def test_an_expired_lease_is_run_again(database_url: str, tmp_path: Path) -> None:
    job_id = await _claim_and_abandon(database_url, tmp_path, max_attempts=3)
    async with running_service(make_settings(database_url, tmp_path)) as svc:
        done = await svc.wait_for(str(job_id), "completed")
    assert done["attempts"] == 2
    assert done["lastError"] == LEASE_EXPIRED


async def test_an_expired_last_attempt_fails_into_the_dlq(
    database_url: str, tmp_path: Path
) -> None:
    job_id = await _claim_and_abandon(database_url, tmp_path, max_attempts=1)
    async with running_service(make_settings(database_url, tmp_path), worker=False) as svc:
        assert await svc.runtime.service.recover_expired() == 1
        job = await svc.runtime.store.get(job_id)
        assert job is not None
        assert job.status is JobStatus.FAILED
        dlq = (await svc.client.get("/api/dlq")).json()
    assert [entry["jobId"] for entry in dlq] == [str(job_id)]
    assert LEASE_EXPIRED in dlq[0]["reason"]
