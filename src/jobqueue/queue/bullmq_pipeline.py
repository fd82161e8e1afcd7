"""BullMQ adds and moves of many jobs in one Redis round trip.

bullmq's worker moves each job with its own Lua call: ``moveToActive`` when a slot fetches a
job, ``moveToFinished`` when it completes. A worker with several slots makes these calls
concurrently, so they can share a pipeline: the scripts run one after another in Redis, each
atomic as before, but the worker pays one write and one read for the lot. This wraps the
worker's backend and groups what arrives together (``store.batching.GroupCommit``); every
other call goes to the backend unchanged.

New jobs go further (``add_jobs``): ``Queue.addBulk`` builds a ``Job`` object per entry
and lets redis-py check its scripts before each pipeline, which was most of the API's time on
a batch create in the Redis mode. Here a batch is one call of a script that runs bullmq's own
add script once per job (``_AddScript``), so Redis parses one command and answers one reply.

It builds the same keys and arguments as bullmq's ``Scripts`` (``addJobArgs``,
``moveToActive`` and ``moveToCompletedArgs``), so it is tied to bullmq's Lua scripts: the
Redis-mode behaviour and Node interop suites run through it.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import orjson
from bullmq.backoffs import Backoffs
from bullmq.job import optsEncodeMap
from bullmq.scripts import raw2NextJobData
from redis.exceptions import NoScriptError

from jobqueue.store.batching import GroupCommit

_MAX_BATCH = 100
# One packer for every call: msgpack.packb makes a new one, with a 256 KiB buffer, each time.
# Used from the event loop's thread only (a Packer is not thread-safe).
_PACKER = msgpack.Packer()
_ACTIVE_KEYS = (
    "wait",
    "active",
    "prioritized",
    "events",
    "stalled",
    "limiter",
    "delayed",
    "paused",
    "meta",
    "pc",
    "marker",
)

_ADD_KEYS = {
    "addPrioritizedJob": (
        "marker",
        "meta",
        "id",
        "prioritized",
        "delayed",
        "completed",
        "active",
        "events",
        "pc",
    ),
    "addDelayedJob": ("marker", "meta", "id", "delayed", "completed", "events"),
    "addStandardJob": (
        "wait",
        "paused",
        "meta",
        "id",
        "completed",
        "delayed",
        "active",
        "events",
        "marker",
    ),
}


class AddError(Exception):
    """bullmq refused to add a job (its Lua script answered with an error code)."""


class MoveError(Exception):
    """bullmq refused one move of a batch (a lost lock, a missing job)."""


class PipelinedMoves:
    """A bullmq backend whose activations and completions share pipelines."""

    def __init__(
        self, backend: Any, on_activations: Callable[[int, int], None] | None = None
    ) -> None:
        """``on_activations(asked, found)`` hears of each batch of ``moveToActive`` calls
        and how many of them brought a job."""
        self._backend = backend
        self._on_activations = on_activations
        self._scripts = backend.scripts
        self._ids = itertools.count()
        self._activations: GroupCommit[tuple[int, str, dict[str, Any]], int, Any] = GroupCommit(
            self._activate, key=lambda call: call[0], max_batch=_MAX_BATCH
        )
        self._completions: GroupCommit[tuple[int, Any, Any, Any, str, bool], int, Any] = (
            GroupCommit(self._complete, key=lambda call: call[0], max_batch=_MAX_BATCH)
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    async def moveToActive(self, token: str, opts: dict[str, Any]) -> Any:  # noqa: N802 - bullmq's name
        """bullmq's ``moveToActive``, in the next shared pipeline."""
        return await self._activations.submit((next(self._ids), token, opts))

    async def moveToCompleted(  # noqa: N802 - bullmq's name
        self,
        job: Any,
        return_value: Any,
        remove_on_complete: Any,
        token: str,
        fetch_next: bool = True,
    ) -> Any:
        """bullmq's ``moveToCompleted``, in the next shared pipeline."""
        call = (next(self._ids), job, return_value, remove_on_complete, token, fetch_next)
        outcome = await self._completions.submit(call)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def _activate(self, calls: Sequence[tuple[int, str, dict[str, Any]]]) -> dict[int, Any]:
        scripts = self._scripts
        keys = scripts.getKeys(list(_ACTIVE_KEYS))
        moves = []
        for _id, token, opts in calls:
            packed = _PACKER.pack(
                {
                    "token": token,
                    "lockDuration": opts.get("lockDuration", 0),
                    "limiter": opts.get("limiter"),
                }
            )
            moves.append((keys, [scripts.keys[""], round(time.time() * 1000), packed]))
        raws = await self._run("moveToActive", moves)
        for raw in raws:
            if isinstance(raw, Exception):
                raise raw
        moved = [raw2NextJobData(raw) for raw in raws]
        if self._on_activations is not None:
            self._on_activations(len(calls), sum(1 for next_job in moved if next_job[0]))
        return {call[0]: next_job for call, next_job in zip(calls, moved, strict=True)}

    async def _complete(
        self, calls: Sequence[tuple[int, Any, Any, Any, str, bool]]
    ) -> dict[int, Any]:
        moves = []
        for _id, job, value, remove, token, fetch_next in calls:
            moves.append(self._scripts.moveToCompletedArgs(job, value, remove, token, fetch_next))
        raws = await self._run("moveToFinished", moves)
        return {
            call[0]: _completed(call[1], raw, args[1])
            for call, raw, (_keys, args) in zip(calls, raws, moves, strict=True)
        }

    async def _run(
        self, script_name: str, moves: Sequence[tuple[list[Any], list[Any]]]
    ) -> list[Any]:
        return await run_script(self._scripts, script_name, moves)


async def add_jobs(scripts: Any, entries: Iterable[tuple[str, Any, dict[str, Any]]]) -> None:
    """Add ``(name, data, opts)`` entries as ``Queue.addBulk`` would, one script call per kind
    of add (standard, delayed, prioritized).

    Each add runs bullmq's own script, as in bullmq; the batch is not a transaction, which
    no caller needs (an add of an id BullMQ still holds is ignored, so a retry is safe). An
    add that fails stops the rest of its call: raises AddError, and the reconciler adds what
    is missing later.
    """
    now_ms = round(time.time() * 1000)
    by_script: dict[str, list[Any]] = {}
    for name, data, opts in entries:
        script_name, extra = _add_script(opts)
        args = _add_args(scripts.keys[""], name, data, opts, now_ms)
        by_script.setdefault(script_name, []).extend((*args, extra))
    for script_name, args in by_script.items():
        script = _AddScript.of(scripts.commands[script_name])
        keys = scripts.getKeys(list(_ADD_KEYS[script_name]))
        (replies,) = await run_script(scripts, script, [(keys, args)])
        if isinstance(replies, Exception):
            raise AddError(f"bullmq could not add jobs: {replies}")
        failed = [raw for raw in replies if isinstance(raw, int) and raw < 0]
        if failed:
            raise AddError(f"bullmq could not add {len(failed)} jobs (code {failed[0]})")


@dataclass(frozen=True)
class _AddScript:
    """bullmq's add script (``source``), run once per group of ``_ADD_ARGS`` arguments.

    The source becomes the body of a Lua function whose parameters shadow the ``KEYS`` and
    ``ARGV`` globals it reads, so bullmq's code runs unchanged, one job at a time.
    """

    script: str
    sha: str

    @classmethod
    def of(cls, command: Any) -> _AddScript:
        """The batch version of one of bullmq's add commands (built once per command)."""
        cached = _BATCH_SCRIPTS.get(command.sha)
        if cached is None:
            text = _BATCH_LUA.format(body=command.script, per_job=_ADD_ARGS)
            cached = cls(text, hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest())
            _BATCH_SCRIPTS[command.sha] = cached
        return cached


_ADD_ARGS = 4  # per job: packed arguments, data, packed options, delay or priority
_BATCH_LUA = """
local function addOne(KEYS, ARGV)
{body}
end
local replies = {{}}
for first = 1, #ARGV, {per_job} do
  replies[#replies + 1] = addOne(KEYS, {{unpack(ARGV, first, first + {per_job} - 1)}})
end
return replies
"""
_BATCH_SCRIPTS: dict[str, _AddScript] = {}


def _add_script(opts: dict[str, Any]) -> tuple[str, int]:
    """The script bullmq's ``Scripts.addJob`` picks for ``opts``, and its last argument."""
    if opts.get("delay"):
        return "addDelayedJob", opts["delay"]
    if opts.get("priority"):
        return "addPrioritizedJob", opts["priority"]
    return "addStandardJob", 0


def _add_args(prefix: str, name: str, data: Any, opts: dict[str, Any], now_ms: int) -> list[bytes]:
    """``Scripts.addJobArgs`` for a job with no parent, repeat or deduplication."""
    final = {"attempts": 0, "delay": 0, **opts, "backoff": Backoffs.normalize(opts.get("backoff"))}
    encoded = {optsEncodeMap.get(key, key): value for key, value in final.items()}
    timestamp = opts.get("timestamp", now_ms)
    packed = _PACKER.pack(
        [prefix, opts.get("jobId") or "", name, timestamp, None, None, None, None, None]
    )
    # As str: orjson's bytes keep the 4 KiB buffer it wrote into while they live (a batch's
    # adds held 16 MiB of them); the str copy is the JSON's own size.
    return [packed, orjson.dumps(data).decode(), _PACKER.pack(encoded)]


async def run_script(
    scripts: Any, script: Any, calls: Sequence[tuple[list[Any], list[Any]]]
) -> list[Any]:
    """Run a script (one of bullmq's, by name, or an object with ``sha`` and ``script``) once
    per (keys, args) in one pipeline; each result or error in order.

    ``EVALSHA`` straight away: redis-py's own pipelined scripts first ask whether each
    script is loaded (a round trip per pipeline). A Redis that forgot the script (restart,
    SCRIPT FLUSH) answers NOSCRIPT without running anything: load it, run those again.
    """
    if isinstance(script, str):
        script = scripts.commands[script]
    conn = scripts.redisConnection.conn
    results = await _pipelined(conn, script.sha, calls)
    missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
    if missing:
        await conn.script_load(script.script)
        again = await _pipelined(conn, script.sha, [calls[i] for i in missing])
        for i, result in zip(missing, again, strict=True):
            results[i] = result
    return results


async def _pipelined(
    conn: Any, sha: str, moves: Sequence[tuple[list[Any], list[Any]]]
) -> list[Any]:
    pipe = conn.pipeline(transaction=False)
    for keys, args in moves:
        pipe.evalsha(sha, len(keys), *keys, *args)
    results: list[Any] = await pipe.execute(raise_on_error=False)
    return results


def _completed(job: Any, raw: Any, finished_on: int) -> Any:
    """What bullmq's backend returns for one ``moveToFinished``, or the error to raise."""
    if isinstance(raw, Exception):
        return raw
    if isinstance(raw, int) and raw < 0:
        return MoveError(f"bullmq could not complete job {job.id} (code {raw})")
    return {"result": raw2NextJobData(raw) if raw else None, "finishedOn": finished_on}
