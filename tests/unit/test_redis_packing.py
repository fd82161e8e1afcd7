"""Redis commands packed by hiredis: the same bytes as redis-py's own packer, TCP only."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.connection import Connection, SSLConnection

from jobqueue.queue.bullmq_wire import HiredisPackedConnection, pack_with_hiredis, redis_client


def test_hiredis_packs_what_redis_py_packs() -> None:
    commands = [
        ("EVALSHA", "abc", 2, "k1", "k2", b"\x92\x01\xa1x", 7, 2.5, "ü"),
        ("CONFIG GET", "maxmemory"),
        (b"SET", memoryview(b"key"), bytearray(b"value")),
    ]
    ours = HiredisPackedConnection().pack_commands(commands)
    theirs = Connection().pack_commands(commands)
    assert b"".join(ours) == b"".join(theirs)


def test_plain_tcp_clients_pack_with_hiredis_and_tls_ones_keep_their_class() -> None:
    plain = redis_client("redis://127.0.0.1:6379/0", 1.0)
    tls = redis_client("rediss://127.0.0.1:6380/0", 1.0)
    assert plain.connection_pool.connection_class is HiredisPackedConnection
    assert tls.connection_pool.connection_class is SSLConnection


def test_clients_built_by_bullmq_are_switched_before_use() -> None:
    client = Redis.from_url("redis://127.0.0.1:6379/0")
    pack_with_hiredis(client)
    assert client.connection_pool.connection_class is HiredisPackedConnection
    tls = Redis.from_url("rediss://127.0.0.1:6380/0")
    pack_with_hiredis(tls)
    assert tls.connection_pool.connection_class is SSLConnection
