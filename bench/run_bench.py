#!/usr/bin/env python3
"""``make bench``: run bench/loadgen.mjs against ``jobqueue serve`` in every mode, take the
medians of the rounds, and write the results section of docs/benchmarks.md.

Modes: ``sqlite`` (a fresh SQLite file in a temp dir), ``postgres`` (a fresh database on the
machine's PostgreSQL, dropped afterwards) and ``redis`` (the same, plus a Redis database index
other than 0, flushed before and after). Rounds take turns (sqlite, postgres, redis, sqlite,
...), then a batch run of each mode, in every round. Every run gets a fresh server and database.

Knobs are environment variables (defaults in brackets): ROUNDS [3], JOBS [5000],
CONCURRENCY [50], MODES [sqlite,postgres,redis], IDLE_SAMPLES [100], WARMUP_JOBS [200],
BATCHES [20] (0: no batch runs), BATCH_SIZE [1000], BATCH_CONCURRENCY [4], TIMEOUT [300]
(seconds, per phase), JOB_TYPE [noop], IDLE_CPU_SECONDS [5], OUT_DIR [a new temp dir],
BENCH_DOC [docs/benchmarks.md; empty: do not write], PG_ADMIN_URL
[postgresql://postgres@127.0.0.1:5432], BENCH_REDIS [127.0.0.1:6379], BENCH_REDIS_DB [the
first empty one of 9..15], SERVER_ARGS [extra ``serve`` arguments], NODE [node], JOBQUEUE
[.venv/bin/jobqueue]. Everything else in the environment (WORKER_CONCURRENCY, DB_POOL_SIZE,
...) reaches the server unchanged, except DATABASE_URL, REDIS_*, HOST and PORT, which the
mode sets, and LOG_LEVEL, which is ``warning``.

Exit status: 0 when every run was clean, 1 otherwise (the results are written either way).
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOADGEN = ROOT / "bench" / "loadgen.mjs"
BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
README = ROOT / "README.md"
README_BEGIN = "<!-- perf-table:start -->"
README_END = "<!-- perf-table:end -->"
MODE_NAMES = ("sqlite", "postgres", "redis")
READY_WAIT_S = 60.0
STOP_WAIT_S = 40.0
SERVICE_WAIT_S = 30.0

KNOBS = (
    "ROUNDS",
    "JOBS",
    "CONCURRENCY",
    "MODES",
    "IDLE_SAMPLES",
    "WARMUP_JOBS",
    "BATCHES",
    "BATCH_SIZE",
    "BATCH_CONCURRENCY",
    "TIMEOUT",
    "JOB_TYPE",
    "IDLE_CPU_SECONDS",
    "OUT_DIR",
    "BENCH_DOC",
    "PG_ADMIN_URL",
    "BENCH_REDIS",
    "BENCH_REDIS_DB",
    "SERVER_ARGS",
    "NODE",
    "JOBQUEUE",
)
"""The driver's own settings: not passed to the server."""
SET_BY_MODE = ("DATABASE_URL", "REDIS_URL", "REDIS_HOST", "REDIS_PORT", "HOST", "PORT", "LOG_LEVEL")
SERVER_SETTING_PREFIXES = ("WORKER_", "JOB_", "DB_", "REDIS_TIMEOUT", "RECONCILE_", "JOBQUEUE_")
"""Environment variables shown in the recorded command (jobqueue settings that change speed)."""

NODE_FIGURES: dict[str, tuple[float, float | None]] = {
    "e2e_jobs_s": (372.0, 566.0),
    "create_rps": (706.0, None),
    "idle_p50_ms": (8.8, 5.2),
    "post_p50_ms": (3.9, None),
}
"""The Node service (BullMQ + Prisma, WORKER_CONCURRENCY=5) from issue 6: this machine, and
another machine of the same kind."""

Json = dict[str, Any]
TIMES = "\N{MULTIPLICATION SIGN}"
DASH = "\N{EN DASH}"


class BenchError(Exception):
    """A run could not be set up (a service down, a server that does not start)."""


def log(message: str) -> None:
    """A progress line on stderr."""
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- configuration


def _env_int(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SystemExit(f"{name} must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class Config:
    """What to run, from the environment."""

    rounds: int
    jobs: int
    concurrency: int
    modes: tuple[str, ...]
    idle_samples: int
    warmup: int
    batches: int
    batch_size: int
    batch_concurrency: int
    timeout_s: int
    job_type: str
    idle_cpu_s: int
    out_dir: Path
    doc: Path | None
    pg_admin_url: str
    redis_host: str
    redis_port: int
    redis_db: int | None
    server_args: tuple[str, ...]
    node: str
    jobqueue: str

    @classmethod
    def from_env(cls) -> Config:
        env = os.environ
        modes = tuple(m.strip() for m in env.get("MODES", ",".join(MODE_NAMES)).split(",") if m)
        unknown = [m for m in modes if m not in MODE_NAMES]
        if unknown or not modes:
            raise SystemExit(f"MODES: unknown {unknown}; choose from {', '.join(MODE_NAMES)}")
        doc = env.get("BENCH_DOC", str(ROOT / "docs" / "benchmarks.md"))
        out = env.get("OUT_DIR") or tempfile.mkdtemp(prefix="jobqueue-bench-")
        redis_host, _, redis_port = env.get("BENCH_REDIS", "127.0.0.1:6379").rpartition(":")
        redis_db = env.get("BENCH_REDIS_DB", "")
        if redis_db and not 1 <= int(redis_db) <= 15:
            raise SystemExit("BENCH_REDIS_DB must be 1..15 (database 0 is never flushed)")
        return cls(
            rounds=_env_int("ROUNDS", 3, 1),
            jobs=_env_int("JOBS", 5000, 1),
            concurrency=_env_int("CONCURRENCY", 50, 1),
            modes=modes,
            idle_samples=_env_int("IDLE_SAMPLES", 100, 0),
            warmup=_env_int("WARMUP_JOBS", 200, 0),
            batches=_env_int("BATCHES", 20, 0),
            batch_size=_env_int("BATCH_SIZE", 1000, 1),
            batch_concurrency=_env_int("BATCH_CONCURRENCY", 4, 1),
            timeout_s=_env_int("TIMEOUT", 300, 1),
            job_type=env.get("JOB_TYPE", "noop"),
            idle_cpu_s=_env_int("IDLE_CPU_SECONDS", 5, 0),
            out_dir=Path(out).resolve(),
            doc=Path(doc).resolve() if doc else None,
            pg_admin_url=env.get("PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432").rstrip(
                "/"
            ),
            redis_host=redis_host or "127.0.0.1",
            redis_port=int(redis_port or 6379),
            redis_db=int(redis_db) if redis_db else None,
            server_args=tuple(shlex.split(env.get("SERVER_ARGS", ""))),
            node=env.get("NODE", "node"),
            jobqueue=env.get("JOBQUEUE", str(ROOT / ".venv" / "bin" / "jobqueue")),
        )

    def command(self) -> str:
        """The command line that reproduces this run."""
        shown = [
            f"{name}={shlex.quote(value)}"
            for name, value in sorted(os.environ.items())
            if (name in KNOBS and name not in ("OUT_DIR", "BENCH_DOC"))
            or name.startswith(SERVER_SETTING_PREFIXES)
        ]
        return " ".join([*shown, "make bench"])


# ------------------------------------------------------------------------- small utilities


def run_text(args: Sequence[str], timeout: float = 30) -> str:
    """stdout of a command, stripped; '' when it fails or is missing."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A loopback TCP port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def dig(data: Json | None, *path: str) -> float | None:
    """data[path[0]][path[1]]... as a number, or None when any step is missing."""
    value: Any = data
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return float(value) if isinstance(value, int | float) else None


def median(values: Sequence[float | None]) -> float | None:
    """The median of the values that exist."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


# --------------------------------------------------------------------- PostgreSQL and Redis


class Services:
    """The machine's PostgreSQL and Redis: started when down, databases made and removed."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.redis_db: int | None = config.redis_db

    def psql(self, sql: str, database: str = "postgres") -> str:
        url = f"{self.config.pg_admin_url}/{database}"
        done = subprocess.run(
            ["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise BenchError(f"psql {sql!r} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def redis(self, *args: str) -> str:
        cfg = self.config
        base = ["redis-cli", "-h", cfg.redis_host, "-p", str(cfg.redis_port)]
        done = subprocess.run(
            [*base, *args], capture_output=True, text=True, timeout=30, check=False
        )
        if done.returncode != 0 or done.stdout.startswith("ERR"):
            raise BenchError(f"redis-cli {' '.join(args)} failed: {done.stderr or done.stdout}")
        return done.stdout.strip()

    def ensure_up(self, modes: Sequence[str]) -> None:
        """Start PostgreSQL and Redis when a mode needs them and they are down."""
        if any(m in ("postgres", "redis") for m in modes):
            self._ensure("PostgreSQL", "127.0.0.1", 5432, self._start_postgres)
        if "redis" in modes:
            cfg = self.config
            self._ensure("Redis", cfg.redis_host, cfg.redis_port, self._start_redis)

    @staticmethod
    def _ensure(name: str, host: str, port: int, start: Callable[[], None]) -> None:
        if port_open(host, port):
            return
        log(f"{name} is down at {host}:{port}: starting it")
        start()
        deadline = time.monotonic() + SERVICE_WAIT_S
        while not port_open(host, port):
            if time.monotonic() > deadline:
                raise BenchError(f"{name} did not come up at {host}:{port}")
            time.sleep(0.2)

    @staticmethod
    def _start_postgres() -> None:
        versions = sorted(os.listdir("/etc/postgresql"))
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
            check=True,
            timeout=60,
        )

    def _start_redis(self) -> None:
        subprocess.run(
            [
                "redis-server",
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "-::1",
                "--port",
                str(self.config.redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                "/var/lib/redis",
                "--logfile",
                "/var/log/redis/ci.log",
            ],
            check=True,
            timeout=30,
        )

    def pick_redis_db(self) -> int:
        """BENCH_REDIS_DB, or the first empty database of 9..15 (never 0)."""
        if self.redis_db is None:
            for index in range(9, 16):
                if self.redis("-n", str(index), "DBSIZE") == "0":
                    self.redis_db = index
                    break
            else:
                raise BenchError("Redis databases 9..15 all hold keys: set BENCH_REDIS_DB")
        return self.redis_db

    @contextmanager
    def database(self, mode: str) -> Iterator[dict[str, str]]:
        """The environment that points a server at a fresh database of this mode."""
        if mode == "sqlite":
            yield {}  # the run directory's own file, set by the caller
            return
        name = f"jobqueue_bench_{uuid.uuid4().hex[:10]}"
        self.psql(f'CREATE DATABASE "{name}"')
        env = {"DATABASE_URL": f"{self.config.pg_admin_url}/{name}"}
        try:
            if mode == "redis":
                index = self.pick_redis_db()
                self.redis("-n", str(index), "FLUSHDB")
                cfg = self.config
                env["REDIS_URL"] = f"redis://{cfg.redis_host}:{cfg.redis_port}/{index}"
            yield env
        finally:
            if mode == "redis" and self.redis_db is not None:
                self.redis("-n", str(self.redis_db), "FLUSHDB")
            self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def versions(self, modes: Sequence[str]) -> dict[str, str]:
        """PostgreSQL and Redis server versions."""
        found: dict[str, str] = {}
        if any(m in ("postgres", "redis") for m in modes):
            try:
                found["PostgreSQL"] = self.psql("SHOW server_version")
            except BenchError:
                found["PostgreSQL"] = "?"
        if "redis" in modes:
            try:
                info = self.redis("INFO", "server")
            except BenchError:
                info = ""
            versions = [ln.split(":", 1)[1] for ln in info.splitlines() if ln.startswith("redis_v")]
            found["Redis"] = versions[0].strip() if versions else "?"
        return found


# ------------------------------------------------------------------------------------ runs


@dataclass
class RunResult:
    """One loadgen run against one fresh server."""

    name: str
    mode: str
    kind: str  # "load" or "batch"
    data: Json | None
    loadgen_exit: int | None
    server_exit: int | None
    log_problems: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def clean(self) -> bool:
        return (
            self.error is None
            and self.loadgen_exit == 0
            and self.server_exit == 0
            and not self.log_problems
        )

    def problems(self) -> str:
        """What was not clean, in a few words."""
        found = []
        if self.error:
            found.append(self.error)
        if self.loadgen_exit not in (0, None):
            outcome = (self.data or {}).get("outcome", "no result")
            found.append(f"loadgen exit {self.loadgen_exit} ({outcome})")
        if self.server_exit not in (0, None):
            found.append(f"server exit {self.server_exit}")
        if self.log_problems:
            found.append(f"{len(self.log_problems)} warning/error lines in the server log")
        return "; ".join(found)


class Bench:
    """Runs the rounds and the batch runs."""

    def __init__(self, config: Config, services: Services) -> None:
        self.config = config
        self.services = services
        self.work = Path(tempfile.mkdtemp(prefix="jobqueue-bench-work-"))

    def server_env(self, mode_env: dict[str, str], run_dir: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in KNOBS and k not in SET_BY_MODE}
        env["LOG_LEVEL"] = "warning"
        env["DATABASE_URL"] = mode_env.get("DATABASE_URL", f"sqlite:///{run_dir / 'bench.db'}")
        if "REDIS_URL" in mode_env:
            env["REDIS_URL"] = mode_env["REDIS_URL"]
        return env

    def loadgen_args(self, kind: str, url: str, pid: int, json_path: Path) -> list[str]:
        cfg = self.config
        args = [cfg.node, str(LOADGEN), "--url", url, "--type", cfg.job_type]
        args += ["--timeout", str(cfg.timeout_s), "--warmup", str(cfg.warmup), "--pid", str(pid)]
        args += ["--json", str(json_path), "--quiet"]
        if kind == "load":
            args += ["--jobs", str(cfg.jobs), "--concurrency", str(cfg.concurrency)]
            args += ["--idle-samples", str(cfg.idle_samples)]
            args += ["--idle-cpu-seconds", str(cfg.idle_cpu_s)]
        else:
            args += ["--jobs", "0", "--idle-samples", "0", "--idle-cpu-seconds", "0"]
            args += ["--batches", str(cfg.batches), "--batch-size", str(cfg.batch_size)]
            args += ["--concurrency", str(cfg.batch_concurrency)]
        keys = [k for k in os.environ.get("API_KEYS", "").split(",") if k.strip()]
        if keys:
            args += ["--api-key", keys[0].strip()]
        return args

    def run(self, name: str, mode: str, kind: str) -> RunResult:
        """Start a fresh server of this mode, run loadgen against it, stop it."""
        run_dir = self.work / name
        run_dir.mkdir(parents=True)
        out = self.config.out_dir
        json_path = out / f"{name}.json"
        server_log = out / f"{name}.server.log"
        result = RunResult(name, mode, kind, None, None, None)
        try:
            with self.services.database(mode) as mode_env:
                env = self.server_env(mode_env, run_dir)
                port = free_port()
                server = self.start_server(env, run_dir, port, server_log)
                try:
                    url = f"http://127.0.0.1:{port}"
                    args = self.loadgen_args(kind, url, server.pid, json_path)
                    log(f"{name}: loadgen {' '.join(shlex.quote(a) for a in args[1:])}")
                    result.loadgen_exit = self.run_loadgen(args)
                    if server.poll() is not None:
                        result.error = (
                            f"the server exited during the run (status {server.returncode})"
                            " without being stopped"
                        )
                finally:
                    result.server_exit = stop_server(server)
        except BenchError as exc:
            result.error = str(exc)
            log(f"{name}: {exc}")
        except subprocess.TimeoutExpired as exc:
            result.error = f"{exc.cmd[0]} did not finish within {exc.timeout:.0f} s"
            log(f"{name}: {result.error}")
        if json_path.exists():
            result.data = json.loads(json_path.read_text())
        if server_log.exists():
            result.log_problems = log_problems(server_log.read_text(errors="replace"))
        if not result.clean:
            log(f"{name}: NOT CLEAN: {result.problems()}")
            for line in result.log_problems[:5]:
                log(f"  server log: {line}")
        return result

    def start_server(
        self, env: dict[str, str], run_dir: Path, port: int, server_log: Path
    ) -> subprocess.Popen[bytes]:
        cfg = self.config
        args = [cfg.jobqueue, "serve", "--host", "127.0.0.1", "--port", str(port)]
        with server_log.open("wb") as sink:
            server = subprocess.Popen(
                [*args, *cfg.server_args],
                cwd=run_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_WAIT_S
        while True:
            if server.poll() is not None:
                raise BenchError(f"server exited at start ({server.returncode}): see {server_log}")
            if health_ok(f"http://127.0.0.1:{port}/health"):
                return server
            if time.monotonic() > deadline:
                stop_server(server)
                raise BenchError(f"server not healthy within {READY_WAIT_S:.0f} s")
            time.sleep(0.2)

    def run_loadgen(self, args: list[str]) -> int:
        cfg = self.config
        limit = 4 * cfg.timeout_s + cfg.idle_cpu_s + 120
        done = subprocess.run(args, timeout=limit, check=False, text=True, stdout=subprocess.PIPE)
        for line in done.stdout.splitlines():
            print(f"    {line}", flush=True)
        return done.returncode

    def all_runs(self) -> list[RunResult]:
        cfg = self.config
        results: list[RunResult] = []
        for round_no in range(1, cfg.rounds + 1):
            for mode in cfg.modes:
                results.append(self.run(f"round{round_no}-{mode}", mode, "load"))
            # The batch figures are medians of the rounds too: one run can be a fifth off.
            for mode in cfg.modes if cfg.batches > 0 else ():
                results.append(self.run(f"round{round_no}-batch-{mode}", mode, "batch"))
        shutil.rmtree(self.work, ignore_errors=True)
        return results


def health_ok(url: str) -> bool:
    """True when GET url answers 200 within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def stop_server(server: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then SIGKILL of its whole process group after STOP_WAIT_S; its exit status."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            log(f"server {server.pid} still running {STOP_WAIT_S:.0f} s after SIGTERM: SIGKILL")
    # Whatever it started (and left behind) goes with it: the group is the server's own.
    with suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    return server.wait(timeout=10)


def log_problems(text: str) -> list[str]:
    """Server log lines at warning level or above, and tracebacks."""
    markers = ('"level": "warning"', '"level": "error"', '"level": "critical"', "Traceback")
    words = ("[warning", "[error", "[critical", "WARNING", "ERROR", "CRITICAL")
    return [ln for ln in text.splitlines() if any(m in ln for m in markers + words)]


# ---------------------------------------------------------------------------------- report

METRICS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("create_rps", "creates, requests/s", ("creates", "requests_per_s")),
    ("create_p50_ms", "create latency p50, ms", ("creates", "latency", "p50_ms")),
    ("create_p99_ms", "create latency p99, ms", ("creates", "latency", "p99_ms")),
    ("e2e_jobs_s", "end to end, jobs/s", ("e2e", "jobs_per_s")),
    ("idle_p50_ms", "idle create→completed p50, ms", ("idle", "create_to_completed", "p50_ms")),
    ("idle_p99_ms", "idle create→completed p99, ms", ("idle", "create_to_completed", "p99_ms")),
    ("post_p50_ms", "idle POST alone p50, ms", ("idle", "post_alone", "p50_ms")),
    ("rss_mib", "server peak RSS, MiB", ("server", "peak_rss_mib")),
    ("idle_cpu_pct", "server idle CPU, % of a core", ("server", "idle_cpu", "percent_of_one_core")),
    (
        "loadgen_create_us",
        "load generator CPU, µs/request, creates phase",
        ("creates", "loadgen_cpu", "cpu_us_per_request"),
    ),
    (
        "loadgen_create_pct",
        "load generator CPU, % of a core, creates phase",
        ("creates", "loadgen_cpu", "percent_of_one_core"),
    ),
    (
        "loadgen_us",
        "load generator CPU, µs/request, all phases",
        ("loadgen_cpu", "cpu_us_per_request"),
    ),
)
BATCH_METRICS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("batch_accepted_s", "batch: jobs accepted/s", ("batch", "accepted_per_s")),
    ("batch_processed_s", "batch: jobs processed/s", ("batch", "processed_per_s")),
    ("batch_rss_mib", "batch: server peak RSS, MiB", ("server", "peak_rss_mib")),
    (
        "batch_loadgen_us",
        "batch: load generator CPU, µs/job",
        ("batch", "loadgen_cpu", "cpu_us_per_job"),
    ),
)
LABELS = {key: label for key, label, _ in METRICS + BATCH_METRICS}


@dataclass
class ModeSummary:
    """Per metric: the median over the rounds and every round's value."""

    mode: str
    medians: dict[str, float | None]
    values: dict[str, list[float | None]]


def summarize(config: Config, results: list[RunResult]) -> list[ModeSummary]:
    """Medians per mode and metric."""
    summaries = []
    for mode in config.modes:
        loads = [r for r in results if r.mode == mode and r.kind == "load"]
        batches = [r for r in results if r.mode == mode and r.kind == "batch"]
        values: dict[str, list[float | None]] = {}
        for key, _label, path in METRICS:
            values[key] = [dig(r.data, *path) for r in loads]
        for key, _label, path in BATCH_METRICS:
            values[key] = [dig(r.data, *path) for r in batches]
        medians = {key: median(vals) for key, vals in values.items()}
        summaries.append(ModeSummary(mode, medians, values))
    return summaries


def machine(config: Config, services: Services) -> dict[str, str]:
    """What the numbers were measured on."""
    info: dict[str, str] = {}
    cpuinfo = Path("/proc/cpuinfo").read_text()
    models = [ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if "model name" in ln]
    info["CPUs"] = f"nproc = {len(os.sched_getaffinity(0))}, {models[0] if models else '?'}"
    meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()
    info["memory"] = f"{int(meminfo[1]) / 1024 / 1024:.1f} GiB (MemTotal)"
    info["kernel"] = f"{platform.system()} {platform.release()}"
    python = str(Path(config.jobqueue).parent / "python")
    probe = (
        "import json, platform, sqlite3\n"
        "from importlib import metadata\n"
        "names = ['fastapi', 'starlette', 'uvicorn', 'uvloop', 'httptools', 'pydantic',\n"
        "         'pydantic-core', 'asyncpg', 'sqlalchemy', 'alembic', 'bullmq',\n"
        "         'redis', 'structlog', 'orjson', 'msgspec']\n"
        "libs = {}\n"
        "for n in names:\n"
        "    try:\n"
        "        libs[n] = metadata.version(n)\n"
        "    except metadata.PackageNotFoundError:\n"
        "        pass\n"
        "print(json.dumps({'python': platform.python_implementation() + ' '\n"
        "    + platform.python_version(), 'sqlite': sqlite3.sqlite_version, 'libs': libs}))\n"
    )
    found = run_text([python, "-c", probe])
    probed: Json = json.loads(found) if found else {}
    info["Python"] = str(probed.get("python", "?"))
    info["CPU speed"] = cpu_speed(python)
    info["SQLite"] = str(probed.get("sqlite", "?"))
    info.update(services.versions(config.modes))
    info["Node (load generator)"] = run_text([config.node, "--version"]) or "?"
    libs: dict[str, str] = probed.get("libs", {})
    info["libraries"] = ", ".join(f"{k} {v}" for k, v in libs.items()) or "?"
    commit = run_text(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = run_text(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"])
    branch = run_text(["git", "-C", str(ROOT), "rev-parse", "--abbrev-ref", "HEAD"])
    info["source measured"] = (
        f"{branch} at {commit}" + (" with uncommitted changes in src/" if dirty else "")
        if commit
        else "?"
    )
    return info


def cpu_speed(python: str) -> str:
    """A yardstick for comparing machines of the same kind: machines here differ by up to 3x
    in speed from day to day, so figures from two days compare only through it."""
    probe = (
        "import time\n"
        "best = None\n"
        "for _ in range(3):\n"
        "    t = time.perf_counter(); s = 0\n"
        "    for i in range(10_000_000): s += i\n"
        "    d = time.perf_counter() - t; best = d if best is None else min(best, d)\n"
        "print(round(best, 2))\n"
    )
    seconds = run_text([python, "-c", probe], timeout=120)
    return f"{seconds or '?'} s for a 10,000,000-step Python loop (best of 3; less is faster)"


def fmt(value: float | None, digits: int = 1) -> str:
    """A number for the tables: thousands separated, '-' when missing."""
    if value is None:
        return DASH
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def spread(values: list[float | None]) -> str:
    """min to max of the rounds, when there is more than one."""
    present = [v for v in values if v is not None]
    if len(present) < 2:
        return ""
    return f"{fmt(min(present))} to {fmt(max(present))}"


def node_cells(key: str, value: float | None) -> tuple[str, str]:
    """The Node service's figure and jobqueue/Node, for the metrics issue 6 gives."""
    if key not in NODE_FIGURES:
        return "", ""
    here, elsewhere = NODE_FIGURES[key]
    node = fmt(here) + (f" ({fmt(elsewhere)} elsewhere)" if elsewhere else "")
    if value is None:
        return node, ""
    ratio = f"{value / here:.2f}{TIMES}"
    if elsewhere:
        ratio += f" ({value / elsewhere:.2f}{TIMES})"
    return node, ratio


@dataclass(frozen=True)
class Target:
    """One line of issue 6's targets table."""

    what: str
    modes: tuple[str, ...]
    key: str
    limit: float
    at_least: bool  # True: value >= limit; False: value <= limit


TARGETS = (
    Target(f"end to end ≥ 2,500 jobs/s (≥ 4{TIMES} Node)", ("sqlite",), "e2e_jobs_s", 2500, True),
    Target("idle create→completed p50 ≤ 4 ms", ("sqlite",), "idle_p50_ms", 4, False),
    Target(f"end to end ≥ 2,800 jobs/s (≥ 5{TIMES} Node)", ("postgres",), "e2e_jobs_s", 2800, True),
    Target("idle create→completed p50 ≤ 4 ms", ("postgres",), "idle_p50_ms", 4, False),
    Target(f"end to end ≥ 1,700 jobs/s (≥ 3{TIMES} Node)", ("redis",), "e2e_jobs_s", 1700, True),
    Target("create p99 ≤ 50 ms", ("redis",), "create_p99_ms", 50, False),
    Target("idle create→completed p50 ≤ 5 ms", ("redis",), "idle_p50_ms", 5, False),
    Target(
        "batch create ≥ 20,000 jobs/s accepted (PostgreSQL)",
        ("postgres", "redis"),
        "batch_accepted_s",
        20000,
        True,
    ),
    Target("batch create ≥ 10,000 jobs/s accepted", ("sqlite",), "batch_accepted_s", 10000, True),
    Target("batch processed ≥ 3,000 jobs/s", MODE_NAMES, "batch_processed_s", 3000, True),
    Target("peak RSS ≤ 150 MiB (load run)", MODE_NAMES, "rss_mib", 150, False),
    Target("peak RSS ≤ 150 MiB (batch run)", MODE_NAMES, "batch_rss_mib", 150, False),
    Target("idle CPU ≤ 1% of a core", MODE_NAMES, "idle_cpu_pct", 1, False),
)

MODE_TITLES = {
    "sqlite": "SQLite embedded (`make run`)",
    "postgres": "PostgreSQL only",
    "redis": "PostgreSQL + Redis",
}


def render(
    config: Config,
    results: list[RunResult],
    summaries: list[ModeSummary],
    info: dict[str, str],
    started: datetime,
) -> str:
    """The generated section of docs/benchmarks.md (between the markers)."""
    finished = datetime.now(UTC)
    lines = [
        BEGIN,
        "<!-- Generated by bench/run_bench.py (make bench); edits here are overwritten. -->",
        "",
        f"## Results ({started:%Y-%m-%d %H:%M} to {finished:%H:%M} UTC)",
        "",
        f"Medians of {config.rounds} round{'s' if config.rounds != 1 else ''} per mode"
        + (" (min to max beside them)" if config.rounds > 1 else " (one round: no spread)")
        + "; the modes took turns, a fresh server and database for every run.",
        "",
        "```sh",
        config.command(),
        "```",
        "",
        f"Load: {config.warmup} unmeasured warm-up creates, then {config.jobs:,} `POST /api/jobs`"
        f" of `{config.job_type}` jobs at {config.concurrency} concurrent requests, end to end"
        f" until the stats show them finished, then {config.idle_samples} idle samples; batch"
        f" runs: {config.batches} {TIMES} {config.batch_size:,} jobs at {config.batch_concurrency}"
        " concurrent requests, one run per mode in each round. `LOG_LEVEL=warning`; other"
        " settings at their defaults unless the command shows them.",
        "",
        "| machine | |",
        "|---|---|",
    ]
    lines += [f"| {key} | {value} |" for key, value in info.items()]
    lines += [
        "",
        "Node service: issue 6's figures for this machine, and in brackets for another machine of"
        " this kind; they come from another session, not from this run. jobqueue / Node above"
        f" 1{TIMES} is better for rates, below 1{TIMES} for latencies.",
        "",
    ]
    for summary in summaries:
        lines += mode_table(config, summary)
    lines += targets_table(summaries)
    lines += runs_table(results)
    lines.append(END)
    return "\n".join(lines) + "\n"


def mode_table(config: Config, summary: ModeSummary) -> list[str]:
    """One mode's medians beside the Node service's figures."""
    lines = [
        f"### {MODE_TITLES[summary.mode]}",
        "",
        "| metric | jobqueue | rounds, min to max | Node service (issue 6) | jobqueue / Node |",
        "|---|---|---|---|---|",
    ]
    for key, label, _path in METRICS + BATCH_METRICS:
        value = summary.medians[key]
        if value is None and key.startswith("batch") and config.batches == 0:
            continue
        node, ratio = node_cells(key, value)
        lines.append(
            f"| {label} | {fmt(value)} | {spread(summary.values[key])} | {node} | {ratio} |"
        )
    lines.append("")
    return lines


def targets_table(summaries: list[ModeSummary]) -> list[str]:
    """Issue 6's targets, met or not."""
    lines = [
        "### Targets of issue 6",
        "",
        "| mode | target | measured (median) | met |",
        "|---|---|---|---|",
    ]
    for target in TARGETS:
        for summary in summaries:
            if summary.mode not in target.modes:
                continue
            value = summary.medians.get(target.key)
            if value is None:
                verdict = "not measured"
            elif (value >= target.limit) if target.at_least else (value <= target.limit):
                verdict = "**met**"
            else:
                verdict = "not met"
            title = MODE_TITLES[summary.mode]
            lines.append(f"| {title} | {target.what} | {fmt(value)} | {verdict} |")
    lines.append("")
    return lines


def runs_table(results: list[RunResult]) -> list[str]:
    """Every run and whether it was clean."""
    lines = [
        "### Runs",
        "",
        "| run | outcome | 1-min load average at start, end |",
        "|---|---|---|",
    ]
    for r in results:
        meta = (r.data or {}).get("meta", {})
        load = f"{meta.get('loadavg_at_start', ['?'])[0]}, {meta.get('loadavg_at_end', ['?'])[0]}"
        outcome = "clean" if r.clean else f"NOT CLEAN: {r.problems()}"
        lines.append(f"| {r.name} | {outcome} | {load} |")
    lines.append("")
    return lines


def write_doc(path: Path, section: str) -> None:
    """Replace the text between the markers (or append the section when they are missing)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def readme_table(summaries: list[ModeSummary]) -> str:
    """The README's performance table: the headline medians of every mode, beside Node's."""
    lines = [
        README_BEGIN,
        "| mode | end to end | vs Node | idle create→completed p50 | creates/s"
        " | batch accepted / processed |",
        "|---|---|---|---|---|---|",
    ]
    for summary in summaries:
        m = summary.medians
        _node, ratio = node_cells("e2e_jobs_s", m.get("e2e_jobs_s"))
        batch = f"{fmt(m.get('batch_accepted_s'))} / {fmt(m.get('batch_processed_s'))} jobs/s"
        lines.append(
            f"| {MODE_TITLES[summary.mode]} | {fmt(m.get('e2e_jobs_s'))} jobs/s | {ratio} "
            f"| {fmt(m.get('idle_p50_ms'))} ms | {fmt(m.get('create_rps'))} | {batch} |"
        )
    lines.append(README_END)
    return "\n".join(lines)


def write_readme(path: Path, table: str) -> None:
    """Replace the README's performance table, when it has the markers."""
    text = path.read_text()
    if README_BEGIN in text and README_END in text:
        head, _, rest = text.partition(README_BEGIN)
        _, _, tail = rest.partition(README_END)
        path.write_text(head + table + tail)


def main() -> int:
    """Run everything; write the results; 0 when every run was clean."""
    config = Config.from_env()
    for tool in (config.node, config.jobqueue):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found (make .venv/.installed, and Node 20 as `node`)")
    config.out_dir.mkdir(parents=True, exist_ok=True)
    services = Services(config)
    services.ensure_up(config.modes)
    started = datetime.now(UTC)
    log(f"{config.rounds} round(s) of {', '.join(config.modes)}; results in {config.out_dir}")
    results = Bench(config, services).all_runs()
    summaries = summarize(config, results)
    info = machine(config, services)
    section = render(config, results, summaries, info, started)
    (config.out_dir / "summary.json").write_text(
        json.dumps(
            {
                "command": config.command(),
                "machine": info,
                "medians": {s.mode: s.medians for s in summaries},
                "values": {s.mode: s.values for s in summaries},
                "runs": [
                    {"name": r.name, "clean": r.clean, "problems": r.problems()} for r in results
                ],
            },
            indent=2,
        )
        + "\n"
    )
    (config.out_dir / "results.md").write_text(section)
    if config.doc is not None:
        write_doc(config.doc, section)
        write_readme(README, readme_table(summaries))
        log(f"wrote {config.doc} and the performance table of {README.name}")
    print(section)
    unclean = [r.name for r in results if not r.clean]
    if unclean:
        log(f"not clean: {', '.join(unclean)}")
    log(f"raw results: {config.out_dir}")
    return 1 if unclean else 0


if __name__ == "__main__":
    sys.exit(main())
