"""Every SQL statement of the PostgreSQL store, readable as SQL.

asyncpg prepares each statement once per connection and reuses it. Statements that must be
atomic with a NOTIFY or a dead-letter insert are single statements (CTEs), so they take one
round trip and no explicit transaction.
"""

from __future__ import annotations

CHANNEL = "jobqueue_jobs"
"""Notified in the statement that makes jobs pending, so only committed jobs wake anyone."""

OUTBOX_CHANNEL = "jobqueue_outbox"
"""Notified, with the ids of the new jobs, by ``jobqueue.enqueue`` inside the application's
transaction: Redis-mode workers listen and put those jobs on BullMQ once it commits."""

OUTBOX_IDS_PER_NOTIFY = 200
"""A notification's payload holds at most 8,000 bytes: 200 ids of 37 characters fit."""

INSERT_COLUMNS = (
    "id, type, payload, status, attempts, max_attempts, priority, next_run_at, last_error, "
    "idempotency_key, lease_owner, lease_expires_at, created_at, updated_at, request_fingerprint, "
    "pending_parents, has_dependants, flow_id, on_parent_failure, cancelled_by_parent, flow_key"
)
"""The columns a new job is written with, in the store's encoder's order."""

JOB_COLUMNS = f"{INSERT_COLUMNS}, result, progress, progress_message"
"""The column order every statement returns and the store's decoder reads."""

_JOBS_COLUMNS = ", ".join(f"jobs.{column.strip()}" for column in JOB_COLUMNS.split(","))
"""JOB_COLUMNS for a RETURNING beside other tables' columns."""

_LOG = "coalesce(attempt_log, '[]'::jsonb) || jsonb_build_array({}::jsonb)"
"""The job's history with the ended attempt (a JSON object, the placeholder) appended."""

INSERT_JOBS = f"""
WITH inserted AS (
    INSERT INTO jobs ({INSERT_COLUMNS})
    SELECT id, type, payload::jsonb, status, attempts, max_attempts, priority, next_run_at,
           last_error, idempotency_key, lease_owner, lease_expires_at, created_at, updated_at,
           request_fingerprint, pending_parents, has_dependants, flow_id, on_parent_failure,
           cancelled_by_parent, flow_key
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[], $6::int[],
                $7::int[], $8::timestamptz[], $9::text[], $10::text[], $11::text[],
                $12::timestamptz[], $13::timestamptz[], $14::timestamptz[], $15::text[],
                $16::int[], $17::bool[], $18::uuid[], $19::text[], $20::uuid[], $21::text[])
         AS new({INSERT_COLUMNS})
    RETURNING 1
)
SELECT pg_notify('{CHANNEL}', '') FROM (SELECT count(*) FROM inserted) AS done
"""

NOTIFY_OUTBOX = f"""
SELECT pg_notify('{OUTBOX_CHANNEL}', string_agg(id::text, ',' ORDER BY n))
FROM unnest($1::uuid[]) WITH ORDINALITY AS new(id, n)
GROUP BY (n - 1) / {OUTBOX_IDS_PER_NOTIFY}
"""
"""The outbox notification of jobs just inserted, or released by a parent's failure
(comma-separated ids, several notifications for a large batch); delivered when, and only if,
the transaction commits."""

PENDING_AMONG = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ANY($1::uuid[]) AND status = 'pending'"

KEY_HOLDERS = """
SELECT idempotency_key, id, request_fingerprint FROM jobs WHERE idempotency_key = ANY($1::text[])
"""
"""Which jobs hold these idempotency keys (and the fingerprint of the request that made
each): ``jobqueue.enqueue`` reads this on the application's connection, whose driver may
decode JSON columns its own way, so it reads no JSON."""

GET_JOB = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"

JOBS_BY_IDEMPOTENCY_KEYS = f"SELECT {JOB_COLUMNS} FROM jobs WHERE idempotency_key = ANY($1)"

LIST_JOBS = f"""
SELECT {JOB_COLUMNS} FROM jobs
WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR type = $2)
ORDER BY created_at DESC, id DESC
LIMIT $3 OFFSET $4
"""

COUNT_BY_STATUS = "SELECT status, count(*) FROM jobs GROUP BY status"

APPLY_PLAN = f"""
WITH changed AS (
    UPDATE jobs SET status = $2, attempts = $3, next_run_at = $4, updated_at = $6
    WHERE id = $1 AND status = $5
    RETURNING {JOB_COLUMNS}
), woken AS (
    SELECT pg_notify('{CHANNEL}', '') FROM changed WHERE changed.status = 'pending'
)
SELECT {JOB_COLUMNS} FROM changed, (SELECT count(*) FROM woken) AS notified
"""

OLDEST_DUE_PENDING = """
SELECT least(
    (SELECT next_run_at FROM jobs WHERE status = 'pending' AND next_run_at <= $1
     ORDER BY next_run_at LIMIT 1),
    (SELECT created_at FROM jobs WHERE status = 'pending' AND next_run_at IS NULL
     ORDER BY created_at LIMIT 1)
)
"""
"""The oldest due pending job for /metrics: the first entry of ``ix_jobs_status_next_run_at``
and of ``ix_jobs_status_created_at`` (``least`` ignores a NULL), no scan."""

APPLY_PLAN_TO_SWEEP = f"""
WITH picked AS MATERIALIZED (
    SELECT id FROM jobs
    WHERE status = $5 AND ($6::text IS NULL OR type = $6)
      AND created_at <= $7 AND created_at >= $8 AND (created_at, id) > ($8, $9)
    ORDER BY created_at, id
    LIMIT $10
    FOR UPDATE SKIP LOCKED
), changed AS (
    UPDATE jobs SET status = $1, attempts = $2, next_run_at = $3, updated_at = $4
    FROM picked
    WHERE jobs.id = picked.id AND jobs.status = $5
    RETURNING {_JOBS_COLUMNS}
), woken AS (
    SELECT pg_notify('{CHANNEL}', '') WHERE EXISTS (SELECT FROM changed WHERE status = 'pending')
)
SELECT {JOB_COLUMNS} FROM changed, (SELECT count(*) FROM woken) AS notified
"""
"""One batch of retry-failed, with one NOTIFY for the lot. Rows another transaction holds
are skipped, not waited for: that one is changing them. The batch is picked once (a
materialized CTE): as a subquery of the UPDATE it could be run again for each row, and skip
the rows this statement had just locked, taking more than ``$10``. ``created_at >= $8``
repeats part of the cursor's condition in a form ``ix_jobs_status_created_at`` can start
its range at."""

DELETE_JOB = f"DELETE FROM jobs WHERE id = $1 RETURNING {JOB_COLUMNS}"

CLAIM_DUE = f"""
WITH due AS MATERIALIZED (
    SELECT id FROM jobs
    WHERE status = 'pending' AND (next_run_at IS NULL OR next_run_at <= $3)
      AND ($4::text[] IS NULL OR type = ANY($4))
    ORDER BY priority, created_at
    LIMIT $5
    FOR UPDATE SKIP LOCKED
)
UPDATE jobs SET status = 'processing', attempts = attempts + 1, lease_owner = $1,
    lease_expires_at = $2, next_run_at = NULL, updated_at = $3, progress = NULL,
    progress_message = NULL
FROM due WHERE jobs.id = due.id
RETURNING {_JOBS_COLUMNS}
"""
"""At most $5 due jobs, each claimed by one worker. MATERIALIZED: as ``id IN (subquery)`` the
planner may run the locking subquery more than once (say, as a nested loop's inner side), and
with SKIP LOCKED each run finds other rows, so more than $5 would be claimed."""

START_DUE_MANY = f"""
UPDATE jobs SET status = 'processing', attempts = jobs.attempts + 1,
    lease_owner = start.owner, lease_expires_at = start.lease_until, next_run_at = NULL,
    updated_at = $5, progress = NULL, progress_message = NULL
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[])
     AS start(id, owner, lease_until, due_by)
WHERE jobs.id = start.id AND jobs.status = 'pending'
  AND (jobs.next_run_at IS NULL OR jobs.next_run_at <= start.due_by)
RETURNING {_JOBS_COLUMNS}
"""

# Limits per type (concurrency, rate): read and taken in one transaction that holds a
# transaction-level advisory lock of the type's, so that processes take turns.
LOCK_TYPE = "SELECT pg_advisory_xact_lock(hashtext('jobqueue:limit:' || $1))"

RUNNING_OF_TYPE = "SELECT count(*) FROM jobs WHERE type = $1 AND status = 'processing'"

STARTS_SINCE = "SELECT count(*) FROM job_starts WHERE type = $1 AND started_at > $2"

NOTE_STARTS = "INSERT INTO job_starts (type, started_at) SELECT $1, $2 FROM generate_series(1, $3)"

FORGET_STARTS = "DELETE FROM job_starts WHERE type = $1 AND started_at < $2"

RENEW_LEASES = """
UPDATE jobs SET lease_expires_at = $3
WHERE id = ANY($1) AND lease_owner = $2 AND status IN ('processing', 'cancelled')
RETURNING id
"""
"""A job cancelled while it runs stays held: its worker is still stopping its handler."""

CANCELLED_AMONG = "SELECT id FROM jobs WHERE id = ANY($1) AND status = 'cancelled'"

COMPLETE_MANY = f"""
UPDATE jobs SET status = 'completed', result = done.result::jsonb,
    attempt_log = {_LOG.format("done.attempt")}, lease_owner = NULL, lease_expires_at = NULL,
    updated_at = $5
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS done(id, owner, result, attempt)
WHERE jobs.id = done.id AND jobs.lease_owner = done.owner AND jobs.status = 'processing'
  AND ($6 OR NOT jobs.has_dependants)
RETURNING jobs.id, jobs.progress, jobs.progress_message, jobs.has_dependants
"""
"""$6 false: parents are left alone (the one condition ordinary jobs pay, on their own row);
the store completes them in a transaction of their own, with the fan-in step."""

# The outcomes below apply only while the worker still holds the lease it took; $4 is the
# ended attempt for the job's history.
_HELD = "id = $1 AND status = 'processing' AND lease_owner = $2"

SCHEDULE_RETRY = f"""
UPDATE jobs SET status = 'pending', next_run_at = $5, last_error = $6,
    attempt_log = {_LOG.format("$4")}, lease_owner = NULL, lease_expires_at = NULL, updated_at = $3
WHERE {_HELD}
RETURNING {JOB_COLUMNS}
"""

FAIL = f"""
WITH failed AS (
    UPDATE jobs SET status = 'failed', last_error = $5, attempt_log = {_LOG.format("$4")},
        lease_owner = NULL, lease_expires_at = NULL, updated_at = $3
    WHERE {_HELD} AND ($7 OR NOT has_dependants)
    RETURNING {JOB_COLUMNS}
), dead AS (
    INSERT INTO dead_letters (job_id, type, payload, reason, attempts, failed_at, queue_pending)
    SELECT id, type, payload, $5, attempts, updated_at, $6 FROM failed
)
SELECT {JOB_COLUMNS} FROM failed
"""

SET_PROGRESS = """
UPDATE jobs SET progress = report.percent, progress_message = report.message
FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[]) AS report(id, owner, percent, message)
WHERE jobs.id = report.id AND jobs.status = 'processing' AND jobs.lease_owner = report.owner
"""
"""Running attempts' progress, kept only while their worker holds the lease."""

END_CANCELLED = f"""
UPDATE jobs SET attempt_log = {_LOG.format("$3")}, lease_owner = NULL, lease_expires_at = NULL
WHERE id = $1 AND status = 'cancelled' AND lease_owner = $2
RETURNING {JOB_COLUMNS}
"""
"""The last attempt of a job cancelled while it ran goes into its history; the lease ends."""

ATTEMPT_LOG = "SELECT coalesce(attempt_log, '[]'::jsonb) FROM jobs WHERE id = $1"

RELEASE = f"""
WITH released AS (
    UPDATE jobs SET status = 'pending', attempts = attempts - 1,
        lease_owner = NULL, lease_expires_at = NULL, updated_at = $3
    WHERE {_HELD}
    RETURNING {JOB_COLUMNS}
), woken AS (
    SELECT pg_notify('{CHANNEL}', '') FROM released
)
SELECT {JOB_COLUMNS} FROM released, (SELECT count(*) FROM woken) AS notified
"""

EXPIRED_LEASES = f"""
SELECT {JOB_COLUMNS} FROM jobs
WHERE status = 'processing' AND lease_expires_at < $1
ORDER BY lease_expires_at
LIMIT $2
"""

PRUNE = """
WITH pruned AS (
    DELETE FROM jobs WHERE id IN (
        SELECT id FROM jobs
        WHERE status IN ('completed', 'cancelled') AND created_at < $1 AND updated_at < $1
          AND NOT (has_dependants AND EXISTS (
              SELECT 1 FROM job_dependencies AS edge JOIN jobs AS child ON child.id = edge.child_id
              WHERE edge.parent_id = jobs.id
                AND child.status IN ('waiting', 'pending', 'processing')
          ))
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    )
    RETURNING 1
)
SELECT count(*) FROM pruned
"""
"""One batch of retention: finished jobs last changed before $1, their history with them;
rows another transaction holds are left for later, and parents until their children have
finished (a child reads its parents' results, ``ctx.parent_results``). The condition on
``created_at`` adds nothing (a job changes after it is created) but lets
``ix_jobs_status_created_at`` find the rows, so retention needs no index of its own."""

NEXT_RUN_AT = """
SELECT min(next_run_at) FROM jobs
WHERE status = 'pending' AND ($1::text[] IS NULL OR type = ANY($1))
"""

QUEUE_PENDING_DEAD_LETTERS = """
SELECT job_id, type, payload, reason, attempts, failed_at FROM dead_letters
WHERE queue_pending
ORDER BY id
LIMIT $1
"""

DEAD_LETTER_QUEUED = """
UPDATE dead_letters SET queue_pending = false
WHERE job_id = $1 AND failed_at = $2 AND queue_pending
"""

LIST_DEAD_LETTERS = """
SELECT job_id, type, payload, reason, attempts, failed_at FROM dead_letters
ORDER BY failed_at DESC, id DESC
LIMIT $1 OFFSET $2
"""

# Workflows. A parent's outcome is passed on only by jobs marked has_dependants, in the
# transaction that records it; every statement finds the edges by ix_job_dependencies_parent_id.
# Rows are locked in id order, so that two transactions never wait for each other in a circle.

MARK_PARENTS = """
UPDATE jobs SET has_dependants = true
WHERE id IN (SELECT id FROM jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE)
RETURNING id, status
"""
"""Existing parents of new jobs, marked under a row lock: a parent's outcome recorded
meanwhile waits for this transaction, then sees the mark (and, in its next statement, the
new edges); one recorded before shows in the status returned."""

INSERT_EDGES = """
INSERT INTO job_dependencies (child_id, parent_id, settled)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bool[])
"""

_RELEASED = """pending_parents = jobs.pending_parents - counted.done,
        status = CASE WHEN jobs.status = 'waiting' AND jobs.pending_parents = counted.done
                      THEN 'pending' ELSE jobs.status END,
        updated_at = $2"""

_RELEASE_AND_WAKE = f"""
counted AS (
    SELECT child_id, count(*)::int AS done FROM settled GROUP BY child_id
), locked AS (
    SELECT jobs.id, counted.done FROM jobs JOIN counted ON jobs.id = counted.child_id
    ORDER BY jobs.id
    FOR UPDATE OF jobs
), released AS (
    UPDATE jobs SET {_RELEASED.replace("counted.", "locked.")}
    FROM locked WHERE jobs.id = locked.id
    RETURNING jobs.status
), woken AS (
    SELECT pg_notify('{CHANNEL}', '')
    FROM (SELECT 1 FROM released WHERE status = 'pending' LIMIT 1) AS due
)
SELECT count(*) FROM released, (SELECT count(*) FROM woken) AS notified
WHERE released.status = 'pending'
"""

RELEASE_CHILDREN = f"""
WITH settled AS (
    UPDATE job_dependencies SET settled = true
    WHERE parent_id = ANY($1) AND NOT settled
    RETURNING child_id
), {_RELEASE_AND_WAKE}"""
"""The fan-in step of completed parents: their edges settled and one off each child's count,
children at 0 pending; one statement per group commit, however many children."""

RELEASE_CHILD = f"""
WITH settled AS (
    UPDATE job_dependencies SET settled = true
    WHERE child_id = $3 AND parent_id = $1 AND NOT settled
    RETURNING child_id
), {_RELEASE_AND_WAKE}"""
"""A failed parent counted as finished by a child that continues; 1 when that made the
child pending."""

UNSETTLED_CHILDREN = f"""
SELECT {JOB_COLUMNS} FROM jobs
WHERE id IN (SELECT child_id FROM job_dependencies WHERE parent_id = $1 AND NOT settled)
ORDER BY id
FOR UPDATE
"""

CANCEL_FOR_PARENT = """
UPDATE jobs SET status = 'cancelled', cancelled_by_parent = $2, last_error = $3, updated_at = $4
WHERE id = $1 AND status = 'waiting'
"""

REARM_CHILDREN = """
UPDATE jobs SET status = 'waiting', cancelled_by_parent = NULL, last_error = NULL, updated_at = $2
WHERE id IN (SELECT child_id FROM job_dependencies WHERE parent_id = $1)
  AND status = 'cancelled' AND cancelled_by_parent = $1
RETURNING id, has_dependants
"""
"""A retried parent's children that its failure cancelled wait for it again."""

GET_JOB_FOR_UPDATE = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 FOR UPDATE"

DUE_CHILDREN = f"""
SELECT {JOB_COLUMNS} FROM jobs
WHERE id IN (SELECT child_id FROM job_dependencies WHERE parent_id = $1) AND status = 'pending'
"""

PARENT_RESULTS = """
SELECT parent.id, parent.status, parent.result::text
FROM job_dependencies AS edge JOIN jobs AS parent ON parent.id = edge.parent_id
WHERE edge.child_id = $1
"""

FLOW_MEMBERS = f"SELECT {JOB_COLUMNS} FROM jobs WHERE flow_id = $1 ORDER BY created_at, id"

FLOW_EDGES = """
SELECT edge.child_id, edge.parent_id, edge.settled
FROM jobs JOIN job_dependencies AS edge ON edge.child_id = jobs.id
WHERE jobs.flow_id = $1
"""

CANCEL_FLOW = f"""
UPDATE jobs SET status = 'cancelled', next_run_at = NULL, updated_at = $2
WHERE id IN (
    SELECT id FROM jobs
    WHERE flow_id = $1 AND status IN ('waiting', 'pending', 'processing')
    ORDER BY id
    FOR UPDATE
)
RETURNING {JOB_COLUMNS}
"""
"""Every unfinished member; a running one keeps its lease until its worker stops it."""
