"""Test doubles for the service and the consumers: a recording broker, a fake job runner."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from uuid import UUID

from jobqueue.domain.jobs import DeadLetter, Job
from jobqueue.domain.outcome import Outcome, Succeeded
from jobqueue.queue.base import Broker, Consumer, JobRunner, Repairs
from jobqueue.store.memory import InMemoryJobStore
from tests.unit.factories import ended


class RecordingBroker(Broker):
    """Records what the service tells the queue; ``failing`` makes publish raise (and the
    DLQ write fail). It keeps a DLQ of its own, as BullMQ does."""

    name = "recording"
    keeps_dead_letters = True

    def __init__(self) -> None:
        self.published: list[list[UUID]] = []
        """The ids of each publish call, one list per call."""
        self.withdrawn: list[UUID] = []
        self.dead_letters: list[DeadLetter] = []
        self.failing = False

    async def publish(self, jobs: Sequence[Job]) -> None:
        if self.failing:
            raise ConnectionError("queue down")
        self.published.append([job.id for job in jobs])

    async def withdraw(self, job_id: UUID) -> None:
        self.withdrawn.append(job_id)

    async def publish_dead_letter(self, entry: DeadLetter) -> bool:
        if self.failing:
            return False
        self.dead_letters.append(entry)
        return True

    def consumer(self, runner: JobRunner, concurrency: int) -> Consumer:
        raise NotImplementedError("the service never asks for a consumer")

    async def recovery(self, repairs: Repairs) -> None:
        """Nothing to repair: this queue keeps no state of its own."""


class FakeRunner:
    """A JobRunner that completes each job through the store once its gate opens.

    Every change of what it runs notifies ``signal``, so a test awaits a condition
    (``signal.until``) instead of sleeping.
    """

    def __init__(self, store: InMemoryJobStore, signal: Signal | None = None) -> None:
        self.store = store
        self.signal = signal or Signal()
        self.started: list[Job] = []
        self.completed: list[Job] = []
        self.cancelled: list[Job] = []
        self.lost: list[Job] = []
        self.running = 0
        self.max_running = 0
        self.gates: dict[UUID, asyncio.Event] = {}
        """Per job: set to let it finish; jobs without a gate wait for ``open_all``."""
        self.all_open = asyncio.Event()

    async def execute(self, job: Job) -> Outcome:
        """Wait for the job's gate (the handler running), then succeed."""
        self._note_start(job)
        try:
            await self._gate(job.id).wait()
            return Succeeded()
        except asyncio.CancelledError:
            self.cancelled.append(job)
            raise
        finally:
            self.running -= 1
            self.signal.notify()

    async def record(self, job: Job, outcome: Outcome) -> Job | None:
        """Complete the job through the store (every outcome here is a success)."""
        done = await self.store.complete(job, ended(job))
        if done is not None:
            self.completed.append(done)
        self.signal.notify()
        return done

    async def record_lost_attempt(self, job: Job) -> Job | None:
        """Only recorded: these tests never re-deliver a job."""
        self.lost.append(job)
        return None

    def open(self, job_id: UUID) -> None:
        """Let one job finish."""
        self._gate(job_id).set()

    def open_all(self) -> None:
        """Let every job finish, present and future."""
        self.all_open.set()
        for gate in self.gates.values():
            gate.set()

    def _gate(self, job_id: UUID) -> asyncio.Event:
        if job_id not in self.gates:
            self.gates[job_id] = asyncio.Event()
            if self.all_open.is_set():
                self.gates[job_id].set()
        return self.gates[job_id]

    def _note_start(self, job: Job) -> None:
        self.started.append(job)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self.signal.notify()


class Signal:
    """Something changed: lets a test await a condition, with a bound, instead of sleeping.

    ``notify`` never suspends, so a double that calls it does not change how the code under
    test interleaves with the test.
    """

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def notify(self) -> None:
        """Wake every ``until`` to check its condition again."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def until(self, predicate: Callable[[], bool], timeout_s: float = 2.0) -> None:
        """Return once ``predicate`` holds (checked at each notify); TimeoutError after a bound."""
        async with asyncio.timeout(timeout_s):
            while not predicate():
                await self._changed.wait()
