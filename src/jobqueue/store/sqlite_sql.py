"""Every SQL statement of the SQLite store, readable as SQL.

Representations (the schema comes from the Alembic migrations): ids are 32 hex digits,
times are naive UTC text ``YYYY-MM-DD HH:MM:SS.ffffff`` (so text order is time order),
payloads are JSON text.
"""

from __future__ import annotations

INSERT_COLUMNS = (
    "id, type, payload, status, attempts, max_attempts, priority, next_run_at, last_error, "
    "idempotency_key, lease_owner, lease_expires_at, created_at, updated_at, request_fingerprint, "
    "pending_parents, has_dependants, flow_id, on_parent_failure, cancelled_by_parent, flow_key"
)
"""The columns a new job is written with, in ``encode_job``'s order."""

JOB_COLUMNS = f"{INSERT_COLUMNS}, result, progress, progress_message"
"""The column order every statement returns and ``decode_job`` reads."""

_LOGGED = "attempt_log = json_insert(coalesce(attempt_log, '[]'), '$[#]', json(:attempt))"
"""The ended attempt (a JSON object) appended to the job's history, in the outcome's UPDATE."""

CONFIGURE = (
    "PRAGMA journal_mode=WAL",
    # Commits do not wait for the disk; a crash of the process loses nothing committed.
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    # Checkpoints run in a thread on a connection of their own, never on the event loop.
    "PRAGMA wal_autocheckpoint=0",
)

CHECKPOINT = "PRAGMA wal_checkpoint(PASSIVE)"

CHECKPOINT_AND_RESTART = "PRAGMA wal_checkpoint(TRUNCATE)"

INSERT_JOB = f"""
INSERT INTO jobs ({INSERT_COLUMNS})
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

GET_JOB = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"

JOBS_BY_IDEMPOTENCY_KEYS = f"""
SELECT {JOB_COLUMNS} FROM jobs
WHERE idempotency_key IN (SELECT value FROM json_each(?))
"""

KEY_HOLDERS = """
SELECT idempotency_key, id, request_fingerprint FROM jobs
WHERE idempotency_key IN (SELECT value FROM json_each(?))
"""
"""Which jobs hold these idempotency keys (and the fingerprint of the request that made
each): ``jobqueue.enqueue`` reads this on the application's connection, whose driver may
decode JSON columns its own way, so it reads no JSON."""

LIST_JOBS = f"""
SELECT {JOB_COLUMNS} FROM jobs
WHERE (:status IS NULL OR status = :status) AND (:type IS NULL OR type = :type)
ORDER BY created_at DESC, id DESC
LIMIT :limit OFFSET :offset
"""

COUNT_BY_STATUS = "SELECT status, count(*) FROM jobs GROUP BY status"

APPLY_PLAN = f"""
UPDATE jobs SET status = :status, attempts = :attempts, next_run_at = :next_run_at,
    updated_at = :now
WHERE id = :id AND status = :expected_status
RETURNING {JOB_COLUMNS}
"""

OLDEST_DUE_PENDING = """
SELECT min(since) FROM (
    SELECT * FROM (
        SELECT next_run_at AS since FROM jobs INDEXED BY ix_jobs_status_next_run_at
        WHERE status = 'pending' AND next_run_at <= :now
        ORDER BY next_run_at LIMIT 1
    )
    UNION ALL
    SELECT * FROM (
        SELECT created_at FROM jobs INDEXED BY ix_jobs_status_created_at
        WHERE status = 'pending' AND next_run_at IS NULL
        ORDER BY created_at LIMIT 1
    )
)
"""
"""The oldest due pending job for /metrics: the first entry of two indexes, no scan."""

APPLY_PLAN_TO_SWEEP = f"""
UPDATE jobs SET status = :status, attempts = :attempts, next_run_at = :next_run_at,
    updated_at = :now
WHERE id IN (
    SELECT id FROM jobs
    WHERE status = :expected_status AND (:type IS NULL OR type = :type)
      AND created_at <= :created_by AND created_at >= :after_created
      AND (created_at, id) > (:after_created, :after_id)
    ORDER BY created_at, id
    LIMIT :limit
)
RETURNING {JOB_COLUMNS}
"""
"""One batch of retry-failed. ``created_at >= :after_created`` repeats part of the cursor's
condition in a form ``ix_jobs_status_created_at`` can start its range at."""

DELETE_JOB = f"DELETE FROM jobs WHERE id = ? RETURNING {JOB_COLUMNS}"

CLAIM_DUE = f"""
UPDATE jobs SET status = 'processing', attempts = attempts + 1, lease_owner = :owner,
    lease_expires_at = :lease_until, next_run_at = NULL, updated_at = :now,
    progress = NULL, progress_message = NULL
WHERE id IN (
    -- Without statistics the planner would sort every pending row for each claim.
    SELECT id FROM jobs INDEXED BY ix_jobs_claim
    WHERE status = 'pending' AND (next_run_at IS NULL OR next_run_at <= :now)
      AND (:types IS NULL OR type IN (SELECT value FROM json_each(:types)))
    ORDER BY priority, created_at
    LIMIT :limit
)
RETURNING {JOB_COLUMNS}
"""

START_DUE = f"""
UPDATE jobs SET status = 'processing', attempts = attempts + 1, lease_owner = :owner,
    lease_expires_at = :lease_until, next_run_at = NULL, updated_at = :now,
    progress = NULL, progress_message = NULL
WHERE id = :id AND status = 'pending' AND (next_run_at IS NULL OR next_run_at <= :due_by)
RETURNING {JOB_COLUMNS}
"""

# Limits per type (concurrency, rate): read and taken in one BEGIN IMMEDIATE transaction,
# which makes the process the file's only writer meanwhile.
RUNNING_OF_TYPE = "SELECT count(*) FROM jobs WHERE type = :type AND status = 'processing'"

STARTS_SINCE = "SELECT count(*) FROM job_starts WHERE type = :type AND started_at > :since"

NOTE_START = "INSERT INTO job_starts (type, started_at) VALUES (:type, :now)"

FORGET_STARTS = "DELETE FROM job_starts WHERE type = :type AND started_at < :forget_before"

RENEW_LEASES = """
UPDATE jobs SET lease_expires_at = :lease_until
WHERE id IN (SELECT value FROM json_each(:ids)) AND lease_owner = :owner
  AND status IN ('processing', 'cancelled')
RETURNING id
"""
"""A job cancelled while it runs stays held: its worker is still stopping its handler."""

CANCELLED_AMONG = """
SELECT id FROM jobs WHERE id IN (SELECT value FROM json_each(:ids)) AND status = 'cancelled'
"""

END_CANCELLED = f"""
UPDATE jobs SET {_LOGGED}, lease_owner = NULL, lease_expires_at = NULL
WHERE id = :id AND status = 'cancelled' AND lease_owner = :owner
RETURNING {JOB_COLUMNS}
"""
"""The last attempt of a job cancelled while it ran goes into its history; the lease ends."""

# The outcomes below apply only while the worker still holds the lease it took.
_HELD = "id = :id AND status = 'processing' AND lease_owner = :owner"

COMPLETE = f"""
UPDATE jobs SET status = 'completed', result = :result, {_LOGGED}, lease_owner = NULL,
    lease_expires_at = NULL, updated_at = :now
WHERE {_HELD}
RETURNING id, progress, progress_message, has_dependants
"""

SCHEDULE_RETRY = f"""
UPDATE jobs SET status = 'pending', next_run_at = :run_at, last_error = :error, {_LOGGED},
    lease_owner = NULL, lease_expires_at = NULL, updated_at = :now
WHERE {_HELD}
RETURNING {JOB_COLUMNS}
"""

FAIL = f"""
UPDATE jobs SET status = 'failed', last_error = :error, {_LOGGED},
    lease_owner = NULL, lease_expires_at = NULL, updated_at = :now
WHERE {_HELD}
RETURNING {JOB_COLUMNS}
"""

RELEASE = f"""
UPDATE jobs SET status = 'pending', attempts = attempts - 1,
    lease_owner = NULL, lease_expires_at = NULL, updated_at = :now
WHERE {_HELD}
RETURNING {JOB_COLUMNS}
"""

SET_PROGRESS = """
UPDATE jobs SET progress = :percent, progress_message = :message
WHERE id = :id AND status = 'processing' AND lease_owner = :owner
"""
"""A running attempt's progress, kept only while its worker holds the lease."""

ATTEMPT_LOG = "SELECT coalesce(attempt_log, '[]') FROM jobs WHERE id = ?"

INSERT_DEAD_LETTER = """
INSERT INTO dead_letters (job_id, type, payload, reason, attempts, failed_at, queue_pending)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""

QUEUE_PENDING_DEAD_LETTERS = """
SELECT job_id, type, payload, reason, attempts, failed_at FROM dead_letters
WHERE queue_pending
ORDER BY id
LIMIT ?
"""

DEAD_LETTER_QUEUED = """
UPDATE dead_letters SET queue_pending = 0
WHERE job_id = ? AND failed_at = ? AND queue_pending
"""

EXPIRED_LEASES = f"""
SELECT {JOB_COLUMNS} FROM jobs
WHERE status = 'processing' AND lease_expires_at < ?
ORDER BY lease_expires_at
LIMIT ?
"""

PRUNE = """
DELETE FROM jobs WHERE id IN (
    SELECT id FROM jobs
    WHERE status IN ('completed', 'cancelled') AND created_at < :before AND updated_at < :before
      AND NOT (has_dependants AND EXISTS (
          SELECT 1 FROM job_dependencies AS edge JOIN jobs AS child ON child.id = edge.child_id
          WHERE edge.parent_id = jobs.id AND child.status IN ('waiting', 'pending', 'processing')
      ))
    LIMIT :limit
)
"""
"""One batch of retention: finished jobs last changed before ``before``, their history with
them; a parent whose result an unfinished child may still read (``ctx.parent_results``) stays
until that child finishes. A job changes after it is created, so the condition on
``created_at`` adds nothing but lets ``ix_jobs_status_created_at`` find the rows: no index of
its own to keep up on every claim and completion."""

NEXT_RUN_AT = """
SELECT min(next_run_at) FROM jobs
WHERE status = 'pending' AND (:types IS NULL OR type IN (SELECT value FROM json_each(:types)))
"""

LIST_DEAD_LETTERS = """
SELECT job_id, type, payload, reason, attempts, failed_at FROM dead_letters
ORDER BY failed_at DESC, id DESC
LIMIT ? OFFSET ?
"""

# Workflows. A parent's outcome is passed on only by jobs marked has_dependants, in the
# transaction that records it; every statement finds the edges by ix_job_dependencies_parent_id.

INSERT_EDGE = "INSERT INTO job_dependencies (child_id, parent_id, settled) VALUES (?, ?, ?)"

MARK_PARENTS = """
UPDATE jobs SET has_dependants = 1
WHERE id IN (SELECT value FROM json_each(:ids))
RETURNING id, status
"""
"""Existing parents of new jobs, marked so that their outcome is passed on; their state
decides the new jobs' (the transaction is the file's only writer)."""

_UNSETTLED_CHILDREN = (
    "SELECT child_id FROM job_dependencies WHERE parent_id = :parent AND NOT settled"
)

_RELEASED = """pending_parents = pending_parents - 1,
    status = CASE WHEN status = 'waiting' AND pending_parents = 1 THEN 'pending' ELSE status END,
    updated_at = :now"""
"""One more parent finished: the child is pending once none is left (SET reads old values)."""

RELEASE_CHILDREN = f"UPDATE jobs SET {_RELEASED} WHERE id IN ({_UNSETTLED_CHILDREN})"
"""The fan-in step of a completed parent: one indexed UPDATE, however many children."""

SETTLE_EDGES = "UPDATE job_dependencies SET settled = 1 WHERE parent_id = :parent AND NOT settled"

RELEASE_CHILD = f"""
UPDATE jobs SET {_RELEASED}
WHERE id = :child AND EXISTS (
    SELECT 1 FROM job_dependencies WHERE child_id = :child AND parent_id = :parent AND NOT settled
)
"""

SETTLE_EDGE = """
UPDATE job_dependencies SET settled = 1 WHERE child_id = :child AND parent_id = :parent
"""

UNSETTLED_CHILDREN = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id IN ({_UNSETTLED_CHILDREN})"

CANCEL_FOR_PARENT = """
UPDATE jobs SET status = 'cancelled', cancelled_by_parent = :parent, last_error = :reason,
    updated_at = :now
WHERE id = :child AND status = 'waiting'
"""

REARM_CHILDREN = """
UPDATE jobs SET status = 'waiting', cancelled_by_parent = NULL, last_error = NULL,
    updated_at = :now
WHERE id IN (SELECT child_id FROM job_dependencies WHERE parent_id = :parent)
  AND status = 'cancelled' AND cancelled_by_parent = :parent
RETURNING id, has_dependants
"""
"""A retried parent's children that its failure cancelled wait for it again."""

DUE_CHILDREN = f"""
SELECT {JOB_COLUMNS} FROM jobs
WHERE id IN (SELECT child_id FROM job_dependencies WHERE parent_id = ?) AND status = 'pending'
"""

PARENT_RESULTS = """
SELECT parent.id, parent.status, parent.result
FROM job_dependencies AS edge JOIN jobs AS parent ON parent.id = edge.parent_id
WHERE edge.child_id = ?
"""

FLOW_MEMBERS = f"SELECT {JOB_COLUMNS} FROM jobs WHERE flow_id = ? ORDER BY created_at, id"

FLOW_EDGES = """
SELECT edge.child_id, edge.parent_id, edge.settled
FROM jobs JOIN job_dependencies AS edge ON edge.child_id = jobs.id
WHERE jobs.flow_id = ?
"""

CANCEL_FLOW = f"""
UPDATE jobs SET status = 'cancelled', next_run_at = NULL, updated_at = :now
WHERE flow_id = :flow AND status IN ('waiting', 'pending', 'processing')
RETURNING {JOB_COLUMNS}
"""
"""Every unfinished member; a running one keeps its lease until its worker stops it."""

DATA_VERSION = "PRAGMA data_version"
"""A number that changes when another connection commits to the file (not this one's own)."""
