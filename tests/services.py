"""Real PostgreSQL and Redis for tests: skipped locally when absent, a failure under CI=true."""

from __future__ import annotations

import asyncio
import glob
import os
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg
import pytest
import redis

PG_ADMIN_DSN = os.environ.get("JOBQUEUE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("JOBQUEUE_TEST_REDIS", "redis://127.0.0.1:6379")


def unavailable(reason: str) -> None:
    """Skip with ``reason`` locally; fail under CI, where every service must be there."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: services are required)")
    pytest.skip(reason)


def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """Create an empty database for one test session and drop it afterwards."""
    try:
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable(f"PostgreSQL not reachable at {PG_ADMIN_DSN}: {exc}")
        raise
    name = f"jobqueue_test_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A private ``redis-server`` on a loopback port: no disk, stoppable and restartable."""

    def __init__(self, binary: str, port: int) -> None:
        self.binary = binary
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        """The URL of database ``db`` on this server."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        """Start the server (again, on the same port) and wait until it accepts connections."""
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        self.process = subprocess.Popen(
            [self.binary, *args, "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the server; its data is gone (it never writes to disk)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@contextmanager
def private_redis() -> Iterator[RedisServer]:
    """A private Redis for tests that stop and restart it (unavailable without redis-server)."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed (apt-get install redis-server)")
        raise AssertionError("unreachable")
    server = RedisServer(binary, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def flush_redis(url: str) -> None:
    """Empty the Redis database that ``url`` names (and only that one)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.flushdb()
    finally:
        client.close()


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database, kept open in a thread of its own for the test's length."""
    ready: queue.Queue[str | BaseException] = queue.Queue()
    done = threading.Event()

    async def hold() -> None:
        try:
            async with fresh_postgres_database() as url:
                ready.put(url)
                await asyncio.to_thread(done.wait)
        except BaseException as exc:  # skip/fail outcomes too: hand them to the test
            ready.put(exc)

    thread = threading.Thread(target=asyncio.run, args=(hold(),))
    thread.start()
    got = ready.get(timeout=30)
    try:
        if isinstance(got, BaseException):
            raise got
        yield got
    finally:
        done.set()
        thread.join(timeout=30)


def postgres_bindir() -> Path | None:
    """The directory of PostgreSQL's server programs (initdb, postgres), if installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    """A private PostgreSQL cluster on a free port: stoppable, restartable, never the machine's.

    PostgreSQL refuses to run as root, so under root its programs run as the ``postgres``
    user, and the cluster lives in a directory that user owns.
    """

    def __init__(self, bindir: Path, root: Path, listen: Sequence[str] = ("127.0.0.1",)) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.listen = list(listen)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._user = "postgres" if os.geteuid() == 0 else None

    def url(self, database: str = "postgres") -> str:
        """A URL of ``database`` on this server, over TCP on loopback."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        """Create the cluster (trust authentication, no fsync: a test's data is throwaway)."""
        if self._user is not None:
            shutil.chown(self.root, self._user)
        argv = [str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U"]
        argv += ["postgres", "-E", "UTF8", "--no-sync"]
        subprocess.run(argv, user=self._user, check=True, capture_output=True)
        if self.listen != ["127.0.0.1"]:  # test hosts in network namespaces connect too
            with (self.data / "pg_hba.conf").open("a") as hba:
                hba.writelines(f"host all all {address}/24 trust\n" for address in self.listen)

    def start(self) -> None:
        """Start the server (again, on the same port) and wait until it accepts connections."""
        options = {
            "listen_addresses": ",".join(self.listen),
            "unix_socket_directories": str(self.root),
            "fsync": "off",
            "max_connections": "200",
        }
        argv = [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        for name, value in options.items():
            argv += ["-c", f"{name}={value}"]
        log = (self.root / "postgres.log").open("ab")
        self.process = subprocess.Popen(argv, user=self._user, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 30
        while not self.accepting():  # the port opens before recovery ends: ask the server
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not start on port {self.port}: {self.log()}")
            time.sleep(0.05)

    def accepting(self) -> bool:
        """True once the server takes connections (started, and recovered if it crashed)."""
        argv = [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        return subprocess.run(argv, check=False).returncode == 0

    def stop(self, how: signal.Signals = signal.SIGINT) -> None:
        """Stop the server: SIGINT is a fast shutdown (connections cut, data kept), SIGQUIT
        an immediate one (no checkpoint: the next start recovers from the WAL, as after a
        crash)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(how)
            self.process.wait(timeout=30)
        self.process = None

    def create_database(self, name: str) -> str:
        """Create ``name`` and return its URL."""

        async def create() -> None:
            admin = await asyncpg.connect(self.url(), timeout=5)
            try:
                await admin.execute(f'CREATE DATABASE "{name}"')
            finally:
                await admin.close()

        asyncio.run(create())
        return self.url(name)

    def log(self) -> str:
        """The server's log so far."""
        path = self.root / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def private_postgres(listen: Sequence[str] = ("127.0.0.1",)) -> Iterator[PostgresServer]:
    """A private PostgreSQL for tests that stop and restart it (unavailable without initdb)."""
    bindir = postgres_bindir()
    if bindir is None:
        unavailable("PostgreSQL's server programs are not installed (apt-get install postgresql)")
        raise AssertionError("unreachable")
    root = Path(tempfile.mkdtemp(prefix="jobqueue-pg-"))
    server = PostgresServer(bindir, root, listen)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
