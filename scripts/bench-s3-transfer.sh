#!/usr/bin/env bash
# Benchmark (not a test): what the daemon spends per task when remote workers move the bytes through
# it (`omicsd worker --transfer http`) versus straight to and from S3 (`--transfer s3`), on the same
# runs: RUNS germline runs (call cache off) of the shared NA12878 tiny data, one worker, an S3 server
# from scripts/s3-test-server.sh (moto on loopback). Per mode it reports, each divided by the number
# of tasks: the daemon's CPU seconds (utime + stime from /proc/PID/stat) and its network: the bytes of
# the HTTP requests it read and the responses it wrote (its own counters omicsd_http_request_bytes_total
# and omicsd_http_response_bytes_total on /metrics), less this script's own status polls and metric
# scrapes (counted by curl), so what remains is the run submissions, the worker protocol and, with
# --transfer http, the task data. Prints a Markdown table and writes it to BENCH_DIR/bench-s3-transfer.md.
#
# Usage: scripts/bench-s3-transfer.sh [RUNS]     (default 3)
#   BENCH_DIR      work dir (default: a new /tmp/omicsd-bench-s3.XXXXXX, kept)
#   OMICSD_BIN, OMICSD_BUILD_DIR, OMICSD_SHARED_DATA   see scripts/lib/common.sh
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }

RUNS="${1:-3}"
BIN="$(omicsd_bin)"
TINY="$(shared_data_dir)/na12878-chr22-tiny"
[[ -f $TINY/q.fa ]] || die "shared data not found at $TINY"
BENCH_DIR="${BENCH_DIR:-$(mktemp -d /tmp/omicsd-bench-s3.XXXXXX)}"
mkdir -p "$BENCH_DIR"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

endpoint="$(bash "$SCRIPTS_DIR/s3-test-server.sh" start "$BENCH_DIR/s3" $$)"
export OMICSD_S3_ENDPOINT="$endpoint" AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  bash "$SCRIPTS_DIR/s3-test-server.sh" stop "$BENCH_DIR/s3"
}
trap cleanup EXIT

root="$BENCH_DIR/root"
mkdir -p "$root"
cp "$TINY"/q.fa "$TINY"/q.fa.fai "$TINY"/NA12878.chr22.tiny.bam "$TINY"/NA12878.chr22.tiny.bam.bai "$root/"
# Inputs into S3 with curl's SigV4 (any key works against the test server).
for b in bench-inputs bench-fleet; do
  curl -sf -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" -u bench:bench "$endpoint/$b" >/dev/null
done
for f in q.fa q.fa.fai NA12878.chr22.tiny.bam NA12878.chr22.tiny.bam.bai; do
  curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" -u bench:bench -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
    -T "$root/$f" "$endpoint/bench-inputs/cohort/$f" >/dev/null
done

cpu_s() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }
# curl, whose request bytes and response bytes (as the daemon counts them: line, headers, body) are
# appended as "REQ RESP" to the file $EXCLUDED: the benchmark's own traffic, taken out of the daemon's
# counters.
counted_curl() {
  local out
  out="$(curl -sf -w '\n%{size_request} %{size_header} %{size_download}' "$@")" || return 1
  printf '%s\n' "${out%$'\n'*}"
  awk '{print $1, $2 + $3}' <<<"${out##*$'\n'}" >>"$EXCLUDED"
}
# "REQUEST_BYTES RESPONSE_BYTES" served so far: the scrape's own request is in it, its response not.
http_bytes() {
  counted_curl "http://127.0.0.1:$1/metrics" |
    awk '$1 == "omicsd_http_request_bytes_total" {i = $2} $1 == "omicsd_http_response_bytes_total" {o = $2}
         END {print i + 0, o + 0}'
}

measure() {  # mode
  local mode="$1" dir="$BENCH_DIR/mode-$1" port serve_args worker_args ref reads
  rm -rf "$dir" && mkdir -p "$dir"
  EXCLUDED="$dir/excluded-bytes"
  : >"$EXCLUDED"
  port="$(free_port)"
  if [[ $mode == http ]]; then
    serve_args="--allow-root $root"
    worker_args="--transfer http"
    ref="$root/q.fa" reads="file://$root/NA12878.chr22.tiny.bam"
  else
    serve_args="--objects s3://bench-fleet/$mode --allow-s3 s3://bench-inputs/cohort"
    worker_args="--transfer s3 --objects s3://bench-fleet/$mode"
    ref="s3://bench-inputs/cohort/q.fa" reads="s3://bench-inputs/cohort/NA12878.chr22.tiny.bam"
  fi
  # shellcheck disable=SC2086
  "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$dir/daemon" --workers 0 $serve_args >"$dir/serve.log" 2>&1 &
  local serve=$!
  pids+=("$serve")
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  local cpu0 net0 ids=()
  cpu0="$(cpu_s "$serve")" net0="$(http_bytes "$port")"
  for i in $(seq 1 "$RUNS"); do
    ids+=("$(curl -sf -X POST "http://127.0.0.1:$port/v1/runs" -d "{\"workflow\":\"germline\",\"sample\":\"S$i\",\"cache\":false,
      \"inputs\":{\"reference\":\"$ref\",\"reads\":[\"$reads\"]},\"parameters\":{\"threads\":2}}" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')")
  done
  # shellcheck disable=SC2086
  "$BIN" worker --server "http://127.0.0.1:$port" --data-dir "$dir/worker" --once --threads 2 $worker_args \
    >"$dir/worker.log" 2>&1 || true
  while :; do  # --once: one task per worker process, as on AWS Batch
    local left=0
    for id in "${ids[@]}"; do
      s="$(counted_curl "http://127.0.0.1:$port/v1/runs/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')"
      [[ $s == COMPLETE ]] || left=$((left + 1))
      [[ $s == FAILED ]] && die "$mode: run $id failed: $(tail -5 "$dir/worker.log")"
    done
    ((left == 0)) && break
    # shellcheck disable=SC2086
    "$BIN" worker --server "http://127.0.0.1:$port" --data-dir "$dir/worker" --once --threads 2 $worker_args \
      >>"$dir/worker.log" 2>&1 || true
  done
  local tasks=$((RUNS * 3)) cpu1 net1 excluded
  cpu1="$(cpu_s "$serve")" net1="$(http_bytes "$port")"
  kill "$serve"
  # Between the two scrapes the counters took in the polls, the first scrape's response and the last
  # scrape's request: the first and last lines of $EXCLUDED are the scrapes.
  excluded="$(awk '{q[NR] = $1; a[NR] = $2}
    END {s = a[1] + q[NR]; for (i = 2; i < NR; i++) s += q[i] + a[i]; print s}' "$EXCLUDED")"
  read -r in0 out0 <<<"$net0"
  read -r in1 out1 <<<"$net1"
  awk -v m="$mode" -v t="$tasks" -v c="$(echo "$cpu1 - $cpu0" | bc -l)" -v ex="$excluded" \
    -v rin="$((in1 - in0))" -v rout="$((out1 - out0))" \
    'BEGIN {printf "| %s | %d | %.3f | %.1f | %.1f | %.1f |\n", m, t, c / t, rin / t / 1024, rout / t / 1024,
            (rin + rout - ex) / t / 1024}'
}

{
  echo "| worker transfer | tasks | daemon CPU s / task | HTTP in / task (KiB) | HTTP out / task (KiB) | in + out less the benchmark's polls / task (KiB) |"
  echo "| --- | --- | --- | --- | --- | --- |"
  measure http
  # The s3 inputs must have arrived whole (curl's upload), or the comparison means nothing.
  for f in q.fa NA12878.chr22.tiny.bam; do
    size="$(curl -sfI --aws-sigv4 "aws:amz:us-east-1:s3" -u bench:bench "$endpoint/bench-inputs/cohort/$f" |
      tr -d '\r' | awk 'tolower($1) == "content-length:" {print $2}')"
    [[ $size == "$(stat -c %s "$root/$f")" ]] || die "s3://bench-inputs/cohort/$f has $size bytes, not $(stat -c %s "$root/$f")"
  done
  measure s3
} | tee "$BENCH_DIR/bench-s3-transfer.md"
