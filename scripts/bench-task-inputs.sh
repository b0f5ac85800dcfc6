#!/usr/bin/env bash
# Benchmark (not a test) of the daemon's task-input path: RUNS align runs of the same reads (the
# first READS pairs of the hg001 chr20 window, ../shared/data/hg001-chr20-100kb) against its 64 Mb
# reference, with no minimizer index next to it, through `omicsd serve --workers 1` (SQLite, call
# cache off). Prints per run the aligner's own seconds and the task's seconds, how many times the
# minimizer index was built (once: later runs stage it from the object store) and how many .omi files
# the daemon wrote into the --allow-root directory (none: inputs are opened beneath the root and
# staged in scratch; nothing is written next to them).
#
# Usage: scripts/bench-task-inputs.sh
#   RUNS     align runs (default 3)
#   READS    read pairs per run (default 10000)
#   THREADS  engine threads (default: nproc)
#   KEEP=1   keep the work directory (serve.log, the data dir)
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }
need_tools samtools curl python3

BIN="$(omicsd_bin)"
DATA="$REPO_ROOT/../shared/data/hg001-chr20-100kb"
[[ -f $DATA/ucsc.hg19.chr20.unittest.fasta.gz ]] || die "test data not found at $DATA"
RUNS="${RUNS:-3}"
READS="${READS:-10000}"
make_workdir W
mkdir -p "$W/root" "$W/data"
cp "$DATA"/ucsc.hg19.chr20.unittest.fasta.gz* "$W/root/"
samtools collate -u -O "$DATA/NA12878_S1.chr20.10_10p1mb.bam" "$W/collate" |
  samtools fastq -N -F 0x900 -1 "$W/r1.fq" -2 "$W/r2.fq" -s /dev/null -0 /dev/null - 2>/dev/null
head -n $((READS * 4)) "$W/r1.fq" >"$W/root/a1.fq"
head -n $((READS * 4)) "$W/r2.fq" >"$W/root/a2.fq"

PID=
# Replaces make_workdir's trap: stop the daemon, then remove the work dir unless KEEP=1.
trap '[[ -z $PID ]] || kill "$PID" 2>/dev/null || true; [[ ${KEEP:-0} == 1 ]] || rm -rf "$W"' EXIT
for _attempt in 1 2 3; do  # a random port may be taken: try another
  PORT=$((20000 + RANDOM % 20000))
  URL="http://127.0.0.1:$PORT"
  "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$W/data" --allow-root "$W/root" --workers 1 \
    >>"$W/serve.log" 2>&1 &
  PID=$!
  for _ in $(seq 150); do
    curl -sf "$URL/healthz" >/dev/null && break 2
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.2
  done
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  PID=
done
[[ -n $PID ]] || die "the daemon did not start: see $W/serve.log (KEEP=1 keeps it)"

for n in $(seq "$RUNS"); do
  body=$(printf '{"workflow":"align","sample":"b%s","cache":false,"inputs":{"reference":"%s","reads":["%s","%s"]},"parameters":{"threads":%s,"backend":"cpu"}}' \
    "$n" "$W/root/ucsc.hg19.chr20.unittest.fasta.gz" "$W/root/a1.fq" "$W/root/a2.fq" "$(threads)")
  id=$(curl -s -X POST "$URL/v1/runs" -H 'Content-Type: application/json' -d "$body" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  for _ in $(seq 1200); do
    state=$(curl -s "$URL/v1/runs/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
    [[ $state == COMPLETE || $state == FAILED || $state == CANCELED ]] && break
    sleep 0.5
  done
  curl -s "$URL/v1/runs/$id" | python3 -c '
import json, sys
r = json.load(sys.stdin)
t = r.get("provenance", {}).get("tasks", {}).get("align")
if r["state"] != "COMPLETE" or not t:
    sys.exit("run %s: %s" % (r["id"], r["state"]))
steps = {s["step"]: s["seconds"] for s in t["steps"]}
print("run %s: align %.2f s, task %.2f s, %d reads" % (sys.argv[1], steps["align"], t["seconds"], t["stats"]["reads"]))
' "$n"
done
echo "minimizer index builds: $(grep -c 'building minimizer index' "$W/serve.log" || true)"
echo ".omi files written into the allowed root: $(find "$W/root" -name '*.omi' | wc -l)"
