#!/usr/bin/env bash
# Benchmark (not a test): throughput and latency of the daemon's two hot endpoints under load from
# wrk (Debian package) on loopback, at several concurrencies, for each job store:
#   submit  POST /v1/runs          a `call` run (one task) on the shared NA12878 tiny data; every
#                                  request creates a run (durable commit: fsync in SQLite)
#   lease   POST /v1/tasks/lease   a worker lease round trip against the queue the submit phase
#                                  filled (200 = a task leased; 204 = queue empty, counted apart)
# The daemon runs with --workers 0 (nothing consumes the queue but the lease phase) and
# --http-threads 4. Prints a Markdown table (store, endpoint, concurrency, requests/s, p50 and p99
# latency in ms, leased tasks, non-2xx answers) and writes it to BENCH_DIR/bench-service.md.
#
# Usage: scripts/bench-service.sh [DURATION_S]
#   DURATION_S     seconds per measurement (default 10)
#   CONCURRENCY    connections to test (default "1 16 64")
#   STORES         "sqlite postgres" (default; postgres needs scripts/pg-test-server.sh and the
#                  PostgreSQL server binaries, else it is skipped with a note)
#   SERVE_ARGS     more `omicsd serve` options (e.g. "--db-connections 1")
#   PG_FSYNC       on (default: durable commits, like SQLite's synchronous=FULL) or off
#   BENCH_DIR      work dir (default: a new /tmp/omicsd-bench-service.XXXXXX, kept)
#   OMICSD_BIN, OMICSD_BUILD_DIR, OMICSD_SHARED_DATA   see scripts/lib/common.sh
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }

DURATION="${1:-10}"
CONCURRENCY="${CONCURRENCY:-1 16 64}"
STORES="${STORES:-sqlite postgres}"
export OMICSD_PG_FSYNC="${PG_FSYNC:-on}"
need_tools wrk curl
BIN="$(omicsd_bin)"
SHARED="$(shared_data_dir)"
TINY="$SHARED/na12878-chr22-tiny"
[[ -f $TINY/q.fa ]] || die "shared data not found at $TINY (set OMICSD_SHARED_DATA)"

BENCH_DIR="${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/omicsd-bench-service.XXXXXX")}"
mkdir -p "$BENCH_DIR/root"
chmod 755 "$BENCH_DIR"  # the PostgreSQL server runs as the postgres user and keeps its data below
cp -f "$TINY"/q.fa "$TINY"/q.fa.fai "$TINY"/NA12878.chr22.tiny.bam "$TINY"/NA12878.chr22.tiny.bam.bai \
  "$BENCH_DIR/root/"
ROOT="$BENCH_DIR/root"
log "work dir: $BENCH_DIR"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wrk scripts: a fixed body per endpoint; done() prints one machine-readable line.
cat >"$BENCH_DIR/common.lua" <<'EOF'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) leased = 0; empty = 0 end
function response(status, headers, body)
  if status == 200 then leased = leased + 1 elseif status == 204 then empty = empty + 1 end
end
function done(summary, latency, requests)
  local l, e = 0, 0
  for _, t in ipairs(threads) do l = l + t:get("leased"); e = e + t:get("empty") end
  local non2xx = summary.errors.status
  io.write(string.format("RESULT %d %d %.0f %.0f %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), non2xx, l, e))
end
EOF
cat >"$BENCH_DIR/submit.lua" <<EOF
dofile("$BENCH_DIR/common.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"workflow":"call","sample":"bench","inputs":{"reference":"$ROOT/q.fa","bam":"$ROOT/NA12878.chr22.tiny.bam"}}'
EOF
cat >"$BENCH_DIR/lease.lua" <<EOF
dofile("$BENCH_DIR/common.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"worker_id":"bench-worker","lease_seconds":3600,"capabilities":{"cpu":true}}'
EOF

DAEMON_PID=""
stop_daemon() {
  [[ -n $DAEMON_PID ]] || return 0
  kill -TERM "$DAEMON_PID" 2>/dev/null || true
  wait "$DAEMON_PID" 2>/dev/null || true
  DAEMON_PID=""
}
PG_DIR=""
cleanup() {
  stop_daemon
  [[ -z $PG_DIR ]] || bash "$SCRIPTS_DIR/pg-test-server.sh" stop "$PG_DIR" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# start_daemon NAME DB_URL: a fresh daemon (fresh data dir) on a free port; sets URL.
start_daemon() {
  local name="$1" db="$2" port
  port="$(free_port)"
  rm -rf "$BENCH_DIR/data-$name"
  "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$BENCH_DIR/data-$name" ${db:+--db "$db"} \
    --workers 0 --http-threads 4 --allow-root "$ROOT" ${SERVE_ARGS:-} >>"$BENCH_DIR/serve-$name.log" 2>&1 &
  DAEMON_PID=$!
  URL="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    curl -sf "$URL/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "daemon did not start (see $BENCH_DIR/serve-$name.log)"
}

ms() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }

TABLE="$BENCH_DIR/bench-service.md"
{
  echo "| store | endpoint | connections | requests/s | p50 ms | p99 ms | tasks leased (rate; empty answers) | non-2xx |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
} >"$TABLE"

# measure STORE ENDPOINT C SCRIPT PATH
measure() {
  local store="$1" endpoint="$2" c="$3" script="$4" path="$5" t out line
  t=$((c < 4 ? c : 4))
  out="$(wrk -t "$t" -c "$c" -d "${DURATION}s" --timeout 10s -s "$script" "$URL$path" 2>&1)" || {
    log "wrk failed: $out"
    return 1
  }
  line="$(grep '^RESULT' <<<"$out" | tail -1)"
  [[ -n $line ]] || die "wrk gave no result: $out"
  read -r _ reqs dur p50 p99 non2xx leased empty <<<"$line"
  local rps
  rps="$(awk -v r="$reqs" -v d="$dur" 'BEGIN { printf "%.0f", r / (d / 1e6) }')"
  local leased_col="-"
  [[ $endpoint == lease ]] &&
    leased_col="$leased ($(awk -v n="$leased" -v d="$dur" 'BEGIN { printf "%.0f", n / (d / 1e6) }')/s; +$empty empty)"
  echo "| $store | $endpoint | $c | $rps | $(ms "$p50") | $(ms "$p99") | $leased_col | $non2xx |" >>"$TABLE"
  log "$store $endpoint c=$c: $rps req/s, p50 $(ms "$p50") ms, p99 $(ms "$p99") ms"
}

for store in $STORES; do
  db=""
  if [[ $store == postgres ]]; then
    if [[ ! -x $SCRIPTS_DIR/pg-test-server.sh ]] || ! command -v /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
      log "postgres: skipped (no PostgreSQL server binaries or scripts/pg-test-server.sh)"
      continue
    fi
    PG_DIR="$BENCH_DIR/pg"
    db="$(bash "$SCRIPTS_DIR/pg-test-server.sh" start "$PG_DIR")"
  fi
  for c in $CONCURRENCY; do
    start_daemon "$store-$c" "$db"
    measure "$store" submit "$c" "$BENCH_DIR/submit.lua" /v1/runs
    measure "$store" lease "$c" "$BENCH_DIR/lease.lua" /v1/tasks/lease
    stop_daemon
    if [[ $store == postgres ]]; then  # a fresh database per concurrency, like a fresh SQLite file
      bash "$SCRIPTS_DIR/pg-test-server.sh" stop "$PG_DIR" >/dev/null
      rm -rf "$PG_DIR"
      db="$(bash "$SCRIPTS_DIR/pg-test-server.sh" start "$PG_DIR")"
    fi
  done
done

echo
echo "omicsd service benchmark: $(nproc) cores, ${DURATION} s per cell, wrk on loopback, PostgreSQL fsync=$OMICSD_PG_FSYNC, $("$BIN" --version | head -1)"
cat "$TABLE"
