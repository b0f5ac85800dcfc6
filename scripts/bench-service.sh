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
# --deep-queue measures issue 19's two targets instead, on a fresh daemon (and database) each:
#   batch   one POST /v1/run-batches of BATCH_RUNS (10,000) germline runs (3 tasks each) against
#           100 single POST /v1/runs of the same run (one curl, one keep-alive connection): wall time
#           of each until its answer (the batch: stored, 202) and their ratio (target: the batch takes
#           less than the 100 singles), and the time until the batch's last run was created
#   lease   POST /v1/tasks/lease throughput (wrk, DURATION_S) on a queue holding only the tasks the
#           leases take (LEASE_POOL `call` runs of the default group, no caps) against the same pool
#           behind DEEP_TASKS (10,000) tasks queued first in three capped run groups (max_tasks 4;
#           max_runs 3; max_cpu_threads 6), priorities -5..5, one run in four with a deadline: the
#           capped groups fill in the first leases and every later lease passes them by. Prints
#           leases/s, the leases taken and the ratio (target: the deep queue within 20%). A lease
#           answered 204 (pool empty) makes the cell invalid: raise LEASE_POOL.
# Writes BENCH_DIR/bench-deep-queue.md.
#
# Usage: scripts/bench-service.sh [--deep-queue] [DURATION_S]
#   DURATION_S     seconds per measurement (default 10)
#   CONCURRENCY    connections to test (default "1 16 64"; --deep-queue: "16")
#   BATCH_RUNS, DEEP_TASKS, LEASE_POOL   --deep-queue sizes (defaults 10000, 10000, 4000 * DURATION_S)
#   BATCH_ONLY     1: --deep-queue measures the batch against the singles only, not the leases
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

MODE=service
[[ ${1:-} == --deep-queue ]] && { MODE=deep-queue; shift; }
DURATION="${1:-10}"
if [[ $MODE == deep-queue ]]; then CONCURRENCY="${CONCURRENCY:-16}"; else CONCURRENCY="${CONCURRENCY:-1 16 64}"; fi
BATCH_RUNS="${BATCH_RUNS:-10000}"
DEEP_TASKS="${DEEP_TASKS:-10000}"
LEASE_POOL="${LEASE_POOL:-$((4000 * DURATION))}"
BATCH_ONLY="${BATCH_ONLY:-0}"
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
    curl -sf "$URL/readyz" >/dev/null 2>&1 && return 0  # /healthz answers before the store is ready
    sleep 0.1
  done
  die "daemon did not start (see $BENCH_DIR/serve-$name.log)"
}

ms() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }

# runs_json FILE N WORKFLOW [GROUPED]: {"runs": [...]} of N runs on the bench data; GROUPED spreads them
# over the three capped groups with priorities -5..5 and a deadline on every fourth (fixed seed).
runs_json() {
  python3 - "$@" "$ROOT" <<'PY'
import json, random, sys, time
path, n, workflow, grouped, root = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "grouped", sys.argv[5]
rng = random.Random(19)
deadline = int(time.time() * 1000) + 3600 * 1000
runs = []
for i in range(n):
    if workflow == "germline":
        r = {"workflow": "germline", "sample": f"S{i}", "parameters": {"threads": 2},
             "inputs": {"reference": f"{root}/q.fa", "reads": [f"file://{root}/NA12878.chr22.tiny.bam"]}}
    else:
        r = {"workflow": "call", "sample": f"S{i}",
             "inputs": {"reference": f"{root}/q.fa", "bam": f"{root}/NA12878.chr22.tiny.bam"}}
    if grouped:
        r["group"] = ("capped-tasks", "capped-runs", "capped-threads")[i % 3]
        r["priority"] = rng.randint(-5, 5)
        if i % 4 == 0:
            r["deadline"] = deadline + rng.randint(0, 600000)
    runs.append(r)
with open(path, "w") as f:
    json.dump({"runs": runs}, f)
PY
}

now_ns() { date +%s%N; }
secs() { awk -v ns="$1" 'BEGIN { printf "%.3f", ns / 1e9 }'; }

# post_batch FILE: POST it to /v1/run-batches; sets BATCH_ID; dies unless the batch was accepted (202).
post_batch() {
  local out
  out="$(curl -sS -m 600 -w '\n%{http_code}' -H 'Content-Type: application/json' --data-binary @"$1" "$URL/v1/run-batches")"
  [[ ${out##*$'\n'} == 202 ]] || die "batch $1 not accepted: ${out:0:300}"
  BATCH_ID="$(sed -n 's/.*"id":"\(batch-[0-9a-f]*\)".*/\1/p' <<<"$out" | head -1)"
  [[ -n $BATCH_ID ]] || die "batch $1: no id in the answer: ${out:0:300}"
}

# wait_batch: waits until the daemon has created every run of BATCH_ID; dies unless all were created.
wait_batch() {
  local out
  while :; do
    out="$(curl -sS -f -m 60 "$URL/v1/run-batches/$BATCH_ID?page_size=1")" || die "batch $BATCH_ID: $out"
    [[ $out == *'"state":"SUBMITTED"'* ]] && break
    sleep 0.05
  done
  [[ $out == *'"existing":0,'* && $out == *'"failed":0,'* ]] || die "batch $BATCH_ID not created in full: ${out:0:300}"
}

# fill_pool: LEASE_POOL default-group `call` runs, in batches of at most 10,000.
fill_pool() {
  local left="$LEASE_POOL" n
  while ((left > 0)); do
    n=$((left < 10000 ? left : 10000))
    [[ -f $BENCH_DIR/pool-$n.json ]] || runs_json "$BENCH_DIR/pool-$n.json" "$n" call flat
    post_batch "$BENCH_DIR/pool-$n.json"
    wait_batch
    left=$((left - n))
  done
}

# lease_rate STORE QUEUE C: leases/s over DURATION_S; appends a row and sets RATE.
lease_rate() {
  local store="$1" queue="$2" c="$3" t out line
  t=$((c < 4 ? c : 4))
  out="$(wrk -t "$t" -c "$c" -d "${DURATION}s" --timeout 10s -s "$BENCH_DIR/lease.lua" "$URL/v1/tasks/lease" 2>&1)" ||
    die "wrk failed: $out"
  line="$(grep '^RESULT' <<<"$out" | tail -1)"
  [[ -n $line ]] || die "wrk gave no result: $out"
  read -r _ reqs dur p50 p99 non2xx leased empty <<<"$line"
  RATE="$(awk -v n="$leased" -v d="$dur" 'BEGIN { printf "%.0f", n / (d / 1e6) }')"
  local note=""
  ((empty == 0)) || note=" (INVALID: $empty empty answers, raise LEASE_POOL)"
  echo "| $store | lease, $queue | $c | $RATE leases/s ($leased leases) | p50 $(ms "$p50") ms, p99 $(ms "$p99") ms, non-2xx $non2xx$note |" >>"$TABLE"
  log "$store lease ($queue) c=$c: $RATE leases/s, $leased leases, $empty empty"
}

deep_queue() {
  local store="$1" db="$2" t0 single batch created base deep c
  local single_body='{"workflow":"germline","sample":"S","parameters":{"threads":2},"inputs":{"reference":"'"$ROOT"'/q.fa","reads":["file://'"$ROOT"'/NA12878.chr22.tiny.bam"]}}'
  [[ -f $BENCH_DIR/batch.json ]] || runs_json "$BENCH_DIR/batch.json" "$BATCH_RUNS" germline flat
  [[ -f $BENCH_DIR/deep.json ]] || runs_json "$BENCH_DIR/deep.json" "$DEEP_TASKS" call grouped
  # (a) one batch vs 100 single submissions, each on a fresh daemon and database.
  start_daemon "$store-singles" "$db"
  local urls=()
  for _ in $(seq 1 100); do urls+=("$URL/v1/runs"); done
  t0="$(now_ns)"
  curl -sS -f -m 600 -H 'Content-Type: application/json' -d "$single_body" "${urls[@]}" >/dev/null ||
    die "single submissions failed"
  single=$(($(now_ns) - t0))
  stop_daemon
  db="$(fresh_db "$store" "$db")"
  start_daemon "$store-batch" "$db"
  t0="$(now_ns)"
  post_batch "$BENCH_DIR/batch.json"
  batch=$(($(now_ns) - t0))
  wait_batch
  created=$(($(now_ns) - t0))
  stop_daemon
  echo "| $store | $BATCH_RUNS-run batch vs 100 single runs | 1 | batch accepted $(secs "$batch") s (all runs created $(secs "$created") s), singles $(secs "$single") s | ratio $(awk -v b="$batch" -v s="$single" 'BEGIN { printf "%.2f", b / s }') (target < 1) |" >>"$TABLE"
  log "$store: batch of $BATCH_RUNS accepted in $(secs "$batch") s, all runs created in $(secs "$created") s; 100 singles $(secs "$single") s"
  [[ $BATCH_ONLY == 1 ]] && return 0
  # (b) leases: the pool alone, then the pool behind DEEP_TASKS capped tasks.
  for c in $CONCURRENCY; do
    db="$(fresh_db "$store" "$db")"
    start_daemon "$store-pool-$c" "$db"
    fill_pool
    lease_rate "$store" "pool only ($LEASE_POOL queued)" "$c"
    base="$RATE"
    stop_daemon
    db="$(fresh_db "$store" "$db")"
    start_daemon "$store-deep-$c" "$db"
    curl -sS -f -o /dev/null -X PUT -H 'Content-Type: application/json' -d '{"max_tasks":4}' "$URL/v1/run-groups/capped-tasks"
    curl -sS -f -o /dev/null -X PUT -H 'Content-Type: application/json' -d '{"max_runs":3}' "$URL/v1/run-groups/capped-runs"
    curl -sS -f -o /dev/null -X PUT -H 'Content-Type: application/json' -d '{"max_cpu_threads":6}' "$URL/v1/run-groups/capped-threads"
    post_batch "$BENCH_DIR/deep.json"
    wait_batch
    fill_pool
    lease_rate "$store" "pool behind $DEEP_TASKS capped tasks" "$c"
    deep="$RATE"
    stop_daemon
    echo "| $store | lease ratio deep / pool only | $c | $(awk -v d="$deep" -v b="$base" 'BEGIN { printf "%.2f", d / b }') | target >= 0.80 |" >>"$TABLE"
  done
}

# fresh_db STORE DB: SQLite gets a new file with each daemon; PostgreSQL a new server. Prints the URL.
fresh_db() {
  [[ $1 == postgres ]] || { echo "$2"; return 0; }
  bash "$SCRIPTS_DIR/pg-test-server.sh" stop "$PG_DIR" >/dev/null
  rm -rf "$PG_DIR"
  bash "$SCRIPTS_DIR/pg-test-server.sh" start "$PG_DIR"
}

TABLE="$BENCH_DIR/bench-service.md"
if [[ $MODE == deep-queue ]]; then
  TABLE="$BENCH_DIR/bench-deep-queue.md"
  {
    echo "| store | measurement | connections | result | notes |"
    echo "|---|---|---:|---|---|"
  } >"$TABLE"
else
  {
    echo "| store | endpoint | connections | requests/s | p50 ms | p99 ms | tasks leased (rate; empty answers) | non-2xx |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
  } >"$TABLE"
fi

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
  if [[ $MODE == deep-queue ]]; then
    deep_queue "$store" "$db"
    continue
  fi
  for c in $CONCURRENCY; do
    start_daemon "$store-$c" "$db"
    measure "$store" submit "$c" "$BENCH_DIR/submit.lua" /v1/runs
    measure "$store" lease "$c" "$BENCH_DIR/lease.lua" /v1/tasks/lease
    stop_daemon
    db="$(fresh_db "$store" "$db")"  # a fresh database per concurrency, like a fresh SQLite file
  done
done

echo
echo "omicsd service benchmark$([[ $MODE == service ]] || echo " --$MODE"): $(nproc) cores, ${DURATION} s per cell, wrk on loopback, PostgreSQL fsync=$OMICSD_PG_FSYNC, $("$BIN" --version | head -1)"
cat "$TABLE"
