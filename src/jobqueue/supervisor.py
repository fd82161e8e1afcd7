"""``jobqueue serve`` with worker processes: the API in this process, the worker beside it.

One Python process runs on one core. With WORKER_PROCESSES > 0, ``serve`` starts that many
``jobqueue worker`` children, so the API and the worker use a core each. Each child shares a
socket pair with ``serve``: the child sends one byte once its worker has started (``serve``
starts its API only then, so the startup lines keep their order), ``serve`` sends a byte
whenever a job was committed ("claim now": the in-process wake-up, across processes, on
SQLite too), and an end of file means ``serve`` is gone, upon which the child exits at once,
as if killed with it (its jobs run again after their lease, as after any crash). On Linux
the child also asks the kernel to kill it with its parent.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from jobqueue.metrics import process_ended

log = structlog.get_logger(__name__)

_PR_SET_PDEATHSIG = 1
_RESTART_DELAY_S = 1.0
_KILL_AFTER_GRACE_S = 10.0
_READY_TIMEOUT_S = 60.0


class WorkerStartError(Exception):
    """A worker process ended, or said nothing, before its worker started."""


@dataclass
class _Child:
    process: asyncio.subprocess.Process
    channel: socket.socket


class WorkerProcesses:
    """Starts, wakes, restarts and stops the ``jobqueue worker`` children of ``serve``."""

    def __init__(self, count: int, concurrency: int) -> None:
        """``concurrency``: WORKER_CONCURRENCY as ``serve`` resolved it, for each child."""
        self.count = count
        self.concurrency = concurrency
        self.children: list[_Child] = []
        self._stopping = False
        self._wake_pending = False

    async def start(self) -> None:
        """Start every child and wait until each one's worker has started."""
        self.children = [await self._spawn() for _ in range(self.count)]

    async def run(self, stopped: asyncio.Event, grace_s: float) -> None:
        """Replace any child that exits on its own; stop them all when ``stopped`` is set
        (each hands back what outlives ``grace_s``)."""
        keepers = [asyncio.create_task(self._keep_alive(i)) for i in range(self.count)]
        await stopped.wait()
        self._stopping = True
        for keeper in keepers:
            keeper.cancel()
        await self._stop(grace_s)

    def wake(self) -> None:
        """Tell every child that jobs were committed: once per turn of the event loop,
        however many commits that turn made."""
        if not self._wake_pending:
            self._wake_pending = True
            asyncio.get_running_loop().call_soon(self._send_wakes)

    def _send_wakes(self) -> None:
        """One byte to each child (never blocks: a full socket buffer means it is awake)."""
        self._wake_pending = False
        for child in self.children:
            with contextlib.suppress(OSError):  # full buffer: awake already; closed: restarting
                child.channel.send(b"!")

    async def _keep_alive(self, index: int) -> None:
        while not self._stopping:
            child = self.children[index]
            code = await child.process.wait()
            process_ended(child.process.pid)
            log.error("worker process exited; starting another", pid=child.process.pid, code=code)
            child.channel.close()
            await asyncio.sleep(_RESTART_DELAY_S)
            try:
                self.children[index] = await self._spawn()
            except WorkerStartError as exc:
                log.error("worker process failed to start; will try again", error=str(exc))

    async def _stop(self, grace_s: float) -> None:
        for child in self.children:
            if child.process.returncode is None:
                child.process.send_signal(signal.SIGTERM)
        waits = asyncio.gather(*(child.process.wait() for child in self.children))
        try:
            await asyncio.wait_for(waits, grace_s + _KILL_AFTER_GRACE_S)
        except TimeoutError:
            log.error("worker processes did not stop in time; killing them")
            for child in self.children:
                with contextlib.suppress(ProcessLookupError):
                    child.process.kill()
        for child in self.children:
            child.channel.close()
            process_ended(child.process.pid)

    async def _spawn(self) -> _Child:
        ours, theirs = socket.socketpair()
        argv = ["-m", "jobqueue.worker.child", str(theirs.fileno()), str(self.concurrency)]
        process = await asyncio.create_subprocess_exec(
            sys.executable, *argv, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL
        )
        theirs.close()
        ours.setblocking(False)
        child = _Child(process, ours)
        await _ready(child)
        log.info("worker process started", pid=process.pid)
        return child


async def _ready(child: _Child) -> None:
    """Wait for the child's first byte: its worker has started."""
    loop = asyncio.get_running_loop()
    try:
        said = await asyncio.wait_for(loop.sock_recv(child.channel, 1), _READY_TIMEOUT_S)
    except TimeoutError:
        said = b""
    if not said:
        code = child.process.returncode
        child.channel.close()
        with contextlib.suppress(ProcessLookupError):
            child.process.kill()
        raise WorkerStartError(f"the worker process ended before it started (exit status {code})")


def follow_parent(channel_fd: int, on_wake: Callable[[], None]) -> None:
    """In a child, once its worker has started: say so, then wake on each byte from
    ``serve``, and exit at once when ``serve`` is gone."""
    _die_with_parent()
    channel = socket.socket(fileno=channel_fd)
    channel.setblocking(False)
    with contextlib.suppress(OSError):
        channel.send(b"r")

    def readable() -> None:
        try:
            data = channel.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            log.error("the serve process is gone; this worker process exits with it")
            os._exit(1)
        on_wake()

    asyncio.get_running_loop().add_reader(channel.fileno(), readable)


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this process when its parent dies (prctl)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
