#!/usr/bin/env bash
# A real workflow engine on omicsd's TES endpoint: Snakemake with its TES executor plugin
# (tests/service/api/requirements-tes-engine.txt, installed by scripts/setup.sh into tes_engine_venv, scripts/lib/common.sh) runs a
# three-rule workflow (count and gc in parallel, then summary) whose every job is a TES task of a
# real `omicsd serve` + `omicsd worker --task-runtime host` on loopback; the result must be right
# and omicsd must have run three COMPLETE TES tasks.
#
# Snakemake's TES plugin assumes no shared file system, so files move through its "fs" storage
# plugin (a directory both sides see); each job runs `python -m snakemake` in the executor (the host
# runtime finds it on the worker's PATH, the engine's environment). The jobs' /tmp is the task's own
# (the host runtime binds it in a private namespace), so neither the work directory nor the engine may be under /tmp.
#
# Usage: tests/service/api/tes_snakemake_test.sh OMICSD_BINARY [WORKDIR [ENGINE_VENV]]
set -euo pipefail
BIN="$(realpath "$1")"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
ENGINE="${3:-${XDG_CACHE_HOME:-$HOME/.cache}/omicsd/venv/tes-engine}"  # scripts/lib/common.sh tes_engine_venv
[[ -x $ENGINE/bin/snakemake ]] || { echo "tes_snakemake_test: $ENGINE missing: run scripts/setup.sh" >&2; exit 1; }
W="${2:-$(dirname "$BIN")/tes-snakemake-work}"
# The host runtime gives executors a private /tmp: what they run and read must live elsewhere.
for d in "$W" "$ENGINE"; do
  case "$d" in /tmp/*) echo "tes_snakemake_test: $d must not be under /tmp" >&2; exit 1 ;; esac
done
rm -rf "$W"
mkdir -p "$W/wf/storage" "$W/gh"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

"$BIN" serve --data-dir "$W/data" --workers 0 --allow-root "$W/wf" --listen "127.0.0.1:$PORT" >"$W/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs "$URL/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
PATH="$ENGINE/bin:$PATH" "$BIN" worker --server "$URL" --data-dir "$W/data" --task-runtime host \
  --allow-host-runtime --allow-root "$W/wf" --lease-seconds 6 >"$W/worker.log" 2>&1 &
pids+=($!)

printf 'ACGT\nGGCC\nTTAA\n' >"$W/wf/storage/reads.txt"
cat >"$W/wf/Snakefile" <<'SMK'
rule all:
    input: "result/summary.txt"

rule count:
    input: "reads.txt"
    output: "work/count.txt"
    shell: "wc -l < {input} > {output}"

rule gc:
    input: "reads.txt"
    output: "work/gc.txt"
    shell: "tr -cd GC < {input} | wc -c > {output}"

rule summary:
    input: c="work/count.txt", g="work/gc.txt"
    output: "result/summary.txt"
    shell: "echo reads=$(cat {input.c}) gc=$(cat {input.g}) > {output}"
SMK
# The plugin (0.1.3) prints $GITHUB_WORKSPACE/funnel.log when a job fails (debug code it ships):
# point it at the worker's log, which is what explains a failed task here.
ln -sf "$W/worker.log" "$W/gh/funnel.log"
cd "$W/wf"
set +e
GITHUB_WORKSPACE="$W/gh" timeout 600 "$ENGINE/bin/snakemake" --executor tes --tes-url "$URL/ga4gh/tes" \
  --jobs 2 --container-image none --default-storage-provider fs \
  --default-storage-prefix "$W/wf/storage" >"$W/snakemake.log" 2>&1
rc=$?
set -e
tail -5 "$W/snakemake.log"
result="$(cat "$W/wf/storage/result/summary.txt" 2>/dev/null || true)"
states="$(curl -fs "$URL/ga4gh/tes/v1/tasks?view=BASIC" | python3 -c '
import json, sys
print(" ".join(sorted(t["name"].split(".")[1] + ":" + t["state"] for t in json.load(sys.stdin)["tasks"])))')"
echo "snakemake exit $rc; result '$result'; omicsd TES tasks: $states"
if ((rc == 0)) && [[ $result == "reads=3 gc=6" ]] &&
  [[ $states == "count:COMPLETE gc:COMPLETE summary:COMPLETE" ]]; then
  echo "tes_snakemake_test: PASS"
  rm -rf "$W"
  exit 0
fi
echo "tes_snakemake_test: FAIL (logs in $W)" >&2
tail -30 "$W/worker.log" >&2
exit 1
