"""Retention: a worker deletes finished jobs older than RETAIN_COMPLETED, every minute."""

from __future__ import annotations

from datetime import timedelta

import structlog

from jobqueue.log_throttle import LogThrottle
from jobqueue.service import JobService

log = structlog.get_logger(__name__)

PRUNE_INTERVAL_S = 60.0
"""How often a worker prunes; every worker process does, which is safe (each batch skips
rows another one holds) and cheap when nothing is due."""


class Retention:
    """Prunes completed and cancelled jobs older than ``keep`` (``prune_once`` runs every
    PRUNE_INTERVAL_S)."""

    def __init__(self, service: JobService, keep: timedelta) -> None:
        self.service = service
        self.keep = keep
        self._failures = LogThrottle()

    async def prune_once(self) -> int:
        """One pass; how many jobs were deleted (0 when it failed: the database is down, and
        the next pass tries again)."""
        try:
            deleted = await self.service.prune(self.keep)
        except Exception as exc:
            failed = "pruning finished jobs failed; will try again"
            self._failures.log(type(exc).__name__, log.warning, failed, error=str(exc))
            return 0
        if deleted:
            log.info(
                "pruned finished jobs", deleted=deleted, older_than_s=self.keep.total_seconds()
            )
        return deleted
