#!/usr/bin/env bash
# Run bench/loadgen.py several times against `jobqueue serve` and print the median of each metric.
#
# Every knob is an environment variable (defaults in brackets):
#   RUNS [5]  JOBS [2000]  CONCURRENCY [50]  IDLE_SAMPLES [20]  JOB_TYPE [noop]  TIMEOUT [300]
#   WARMUP_JOBS [200]      unmeasured creates before each run (0: none)
#   FRESH_SERVER [1]       1: a new server (and, for SQLite, a new database file) for every run;
#                          0: one server for all runs
#   PORT [a free port]     where the server listens (always 127.0.0.1)
#   OUT_DIR [a temp dir]   run-N.json / run-N.txt / server-N.log / medians.json land here
#   DATABASE_URL [unset]   unset: a fresh SQLite file in a temp dir (the embedded default);
#                          set (e.g. postgresql://...): passed to the server as is, and never wiped
#   LOG_LEVEL [warning]    server log level; WORKER_CONCURRENCY, REDIS_URL, ... pass through as is
#   SERVER_ARGS []         extra arguments for `jobqueue serve`
#   JOBQUEUE, PYTHON       the jobqueue command and the Python running loadgen (the repo's .venv)
# Exit status: 0 when every run was clean, 1 otherwise (the medians are printed either way).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
PYTHON=${PYTHON:-$root/.venv/bin/python}
JOBQUEUE=${JOBQUEUE:-$root/.venv/bin/jobqueue}
RUNS=${RUNS:-5}
JOBS=${JOBS:-2000}
CONCURRENCY=${CONCURRENCY:-50}
IDLE_SAMPLES=${IDLE_SAMPLES:-20}
JOB_TYPE=${JOB_TYPE:-noop}
TIMEOUT=${TIMEOUT:-300}
WARMUP_JOBS=${WARMUP_JOBS:-200}
FRESH_SERVER=${FRESH_SERVER:-1}
LOG_LEVEL=${LOG_LEVEL:-warning}
SERVER_ARGS=${SERVER_ARGS:-}
STOP_WAIT_S=40     # SIGTERM, then this long for a graceful exit, then SIGKILL
READY_WAIT_S=60    # longest wait for /health after start

work=$(mktemp -d -t jobqueue-bench.XXXXXX)
OUT_DIR=${OUT_DIR:-$work/results}
mkdir -p "$OUT_DIR"
PORT=${PORT:-$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
url="http://127.0.0.1:$PORT"
server_pid=""
failures=0

log() { printf '[run_matrix] %s\n' "$*" >&2; }

# The database the server gets for run $1: the given DATABASE_URL, or a new SQLite file.
database_url() {
    if [[ -n "${DATABASE_URL:-}" ]]; then
        printf '%s' "$DATABASE_URL"
    else
        printf 'sqlite:///%s/run-%s/bench.db' "$work" "$1"
    fi
}

# Start `jobqueue serve` for run $1 in its own directory (so no .env or outbox is shared).
start_server() {
    local run=$1 dir="$work/run-$1"
    mkdir -p "$dir"
    # shellcheck disable=SC2086  # SERVER_ARGS is meant to split into words
    (cd "$dir" && exec env DATABASE_URL="$(database_url "$run")" LOG_LEVEL="$LOG_LEVEL" \
        "$JOBQUEUE" serve --host 127.0.0.1 --port "$PORT" $SERVER_ARGS) \
        >"$OUT_DIR/server-$run.log" 2>&1 &
    server_pid=$!
    wait_ready "$run"
}

# True when GET /health answers 200 within a second.
health_ok() {
    "$PYTHON" -c 'import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=1)' \
        "$url/health" >/dev/null 2>&1
}

# Poll /health until 200, at most READY_WAIT_S; fail early if the server died.
wait_ready() {
    local tries=$((READY_WAIT_S * 5))
    for ((i = 0; i < tries; i++)); do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            log "server died at start; its log:"; cat "$OUT_DIR/server-$1.log" >&2; exit 1
        fi
        if health_ok; then return 0; fi
        sleep 0.2
    done
    log "server not ready after ${READY_WAIT_S}s; its log:"; cat "$OUT_DIR/server-$1.log" >&2; exit 1
}

# SIGTERM the server we started, wait for a graceful exit, SIGKILL after STOP_WAIT_S.
stop_server() {
    [[ -n "$server_pid" ]] || return 0
    local pid=$server_pid status=0
    server_pid=""
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_WAIT_S * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "server $pid still running ${STOP_WAIT_S}s after SIGTERM: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || status=$?
    [[ $status -eq 0 ]] || log "server $pid exited with status $status"
}
trap stop_server EXIT
trap 'exit 130' INT TERM

# Run loadgen once: $1 = run label; remaining arguments go to loadgen.
loadgen() {
    "$PYTHON" "$here/loadgen.py" --url "$url" --type "$JOB_TYPE" --timeout "$TIMEOUT" "$@"
}

# Show the server log's noteworthy lines for run $1.
server_log_digest() {
    local file="$OUT_DIR/server-$1.log" count
    count=$(grep -ciE 'error|exception|traceback|warning' "$file" || true)
    if [[ "$count" -gt 0 ]]; then
        log "server log $file: $count error/warning lines; first ones:"
        grep -iE 'error|exception|traceback|warning' "$file" | head -n 10 >&2
    fi
}

mode="embedded SQLite (fresh file per server)"
[[ -n "${DATABASE_URL:-}" ]] && mode="DATABASE_URL=${DATABASE_URL%%:*}://... (passed through)"
log "mode: $mode; WORKER_CONCURRENCY=${WORKER_CONCURRENCY:-default}; url $url"
log "runs $RUNS x N=$JOBS C=$CONCURRENCY idle=$IDLE_SAMPLES type=$JOB_TYPE; results in $OUT_DIR"

[[ "$FRESH_SERVER" == 1 ]] || start_server all
for ((run = 1; run <= RUNS; run++)); do
    [[ "$FRESH_SERVER" != 1 ]] || start_server "$run"
    if [[ "$WARMUP_JOBS" -gt 0 ]]; then
        loadgen --jobs "$WARMUP_JOBS" --concurrency "$CONCURRENCY" --idle-samples 0 \
            >/dev/null 2>&1 || log "run $run: warm-up reported problems"
    fi
    log "run $run/$RUNS"
    rc=0
    loadgen --jobs "$JOBS" --concurrency "$CONCURRENCY" --idle-samples "$IDLE_SAMPLES" \
        --json "$OUT_DIR/run-$run.json" | tee "$OUT_DIR/run-$run.txt" || rc=$?
    if [[ $rc -ne 0 ]]; then
        log "run $run: loadgen exited $rc"; failures=$((failures + 1))
    fi
    if [[ "$FRESH_SERVER" == 1 ]]; then
        stop_server; server_log_digest "$run"
    fi
done
if [[ "$FRESH_SERVER" != 1 ]]; then
    stop_server; server_log_digest all
fi

echo
echo "== medians over $RUNS runs: N=$JOBS C=$CONCURRENCY, $mode, WORKER_CONCURRENCY=${WORKER_CONCURRENCY:-default} =="
reports=()
for ((run = 1; run <= RUNS; run++)); do
    [[ -f "$OUT_DIR/run-$run.json" ]] && reports+=("$OUT_DIR/run-$run.json")
done
if [[ ${#reports[@]} -gt 0 ]]; then
    "$PYTHON" "$here/summarize.py" --json "$OUT_DIR/medians.json" "${reports[@]}" || failures=$((failures + 1))
fi
echo "results: $OUT_DIR"
[[ $failures -eq 0 ]]
