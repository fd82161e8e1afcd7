"""PostgreSQL LISTEN/NOTIFY: wake idle workers on other hosts the moment a job is committed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import asyncpg
import structlog

log = structlog.get_logger(__name__)

_RECONNECT_MAX_S = 10.0
_FIRST_CONNECT_S = 5.0


def listening(
    dsn: str, channel: str, on_notify: Callable[[], None]
) -> contextlib.AbstractAsyncContextManager[None]:
    """Call ``on_notify`` for each notification while the context is open.

    A lost connection is re-opened with backoff; polling covers the gap meanwhile.
    """
    return listening_to_payloads(dsn, channel, lambda _payload: on_notify())


@contextlib.asynccontextmanager
async def listening_to_payloads(
    dsn: str, channel: str, on_payload: Callable[[str], None]
) -> AsyncIterator[None]:
    """Call ``on_payload`` with each notification's payload while the context is open; and
    with an empty payload on every (re)connection, since notifications sent while no
    connection listened are lost."""
    ready = asyncio.Event()
    task = asyncio.create_task(
        _listen_forever(dsn, channel, on_payload, ready), name=f"jobqueue-listen-{channel}"
    )
    with contextlib.suppress(TimeoutError):
        # Start listening before the first claim, so no commit falls between the two.
        await asyncio.wait_for(ready.wait(), _FIRST_CONNECT_S)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _listen_forever(
    dsn: str, channel: str, on_payload: Callable[[str], None], ready: asyncio.Event
) -> None:
    delay = 0.5
    while True:
        try:
            await _listen_once(dsn, channel, on_payload, ready)
            delay = 0.5
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning("LISTEN connection lost; polling until it is back", error=str(exc))
        await asyncio.sleep(delay)
        delay = min(delay * 2, _RECONNECT_MAX_S)


async def _listen_once(
    dsn: str, channel: str, on_payload: Callable[[str], None], ready: asyncio.Event
) -> None:
    conn = await asyncpg.connect(dsn, timeout=5)
    closed = asyncio.Event()
    conn.add_termination_listener(lambda _conn: closed.set())
    try:
        await conn.add_listener(channel, lambda _conn, _pid, _channel, payload: on_payload(payload))
        ready.set()
        # A notification missed while reconnecting is covered: claim once right away.
        on_payload("")
        await closed.wait()
    finally:
        await conn.close(timeout=2)
