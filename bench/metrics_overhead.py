"""What the metrics cost a job on the hot path: one create, one outcome and one histogram
observation per job, timed with ``timeit`` in memory (``jobqueue api``, ``jobqueue worker``)
and in multiprocess mode (``serve`` with worker processes: values go to an mmapped file).

Run: ``.venv/bin/python bench/metrics_overhead.py`` (a few seconds, one core).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

ROUNDS = 200_000
PROBE = """
import timeit
from prometheus_client import Counter
from jobqueue.metrics import JobMetrics
from tests.unit.factories import make_job
metrics = JobMetrics()
jobs = [make_job(type="email")]
def per_job():
    metrics.created(jobs)
    metrics.completed("email", 12.5)
uncached = Counter("uncached", "labels() at every increment", ["type"], registry=None)
def labels_each_time():
    uncached.labels("email").inc()
for probe in (per_job, labels_each_time):
    probe()
    best = min(timeit.repeat(probe, number={rounds}, repeat=5)) / {rounds}
    print(f"{{best * 1e6:.2f}}")
"""


def measure(env: dict[str, str]) -> tuple[float, float]:
    """Microseconds per job, and per increment with ``labels()`` looked up each time (best of
    five runs), in a fresh interpreter with ``env``."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(rounds=ROUNDS)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    per_job, labels_each_time = done.stdout.split()
    return float(per_job), float(labels_each_time)


def main() -> None:
    """Print the cost per job in each mode."""
    plain = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    with tempfile.TemporaryDirectory() as directory:
        shared = {**plain, "PROMETHEUS_MULTIPROC_DIR": directory}
        for mode, env in (("in memory", plain), ("multiprocess", shared)):
            per_job, labels_each_time = measure(env)
            print(
                f"{mode}: {per_job:.2f} us per job (created + completed + duration); "
                f"one increment with labels() each time: {labels_each_time:.2f} us"
            )


if __name__ == "__main__":
    main()
