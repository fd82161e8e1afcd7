"""``python -m jobqueue.worker.child CHANNEL_FD CONCURRENCY``: a worker process of ``serve``.

Started without the CLI, whose framework (typer, click, rich) would cost every worker
process megabytes for nothing; ``serve`` has already checked the settings and handlers.
"""

from __future__ import annotations

import sys

from jobqueue.startup import import_structlog


def main(argv: list[str]) -> int:
    """Run a worker woken (and followed) through the socket ``serve`` passed as CHANNEL_FD."""
    import_structlog()
    from jobqueue.config import Settings
    from jobqueue.server import ProcessPlan, run

    channel_fd, concurrency = int(argv[0]), int(argv[1])
    settings = Settings(worker_concurrency=concurrency)
    return run(settings, ProcessPlan(api=False, worker=True, migrate=False, wake_fd=channel_fd))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
