"""The Redis-mode outbox reads job ids from its notifications' payloads."""

from __future__ import annotations

import uuid

from jobqueue.queue.bullmq_outbox import ids_of


def test_a_payload_holds_comma_separated_ids() -> None:
    job_ids = [uuid.uuid4(), uuid.uuid4()]
    assert ids_of(",".join(map(str, job_ids))) == job_ids


def test_an_empty_payload_names_no_job_and_a_malformed_id_is_skipped() -> None:
    job_id = uuid.uuid4()
    assert ids_of("") == []
    assert ids_of(f"not-an-id,{job_id}") == [job_id]
