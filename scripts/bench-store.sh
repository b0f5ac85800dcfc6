#!/usr/bin/env bash
# Benchmark (not a test) of the variant store on generated data: bench_variant_store (tests/) writes
# a synthetic cohort into the store's own SQLite schema (bulk load in key order, journal off), then
# times the store's queries through VariantStore and over HTTP (the real routes and client):
# carriers of a site (p50/p99), a common site's every page, regions, frequencies, cohort rules.
# Prints the load time, database size and a latency line per query kind, and keeps the output in
# BENCH_DIR/bench-store.txt.
#
# Usage: scripts/bench-store.sh
#   SAMPLES           samples in the cohort (default 10000)
#   SITES_PER_SAMPLE  mean carried sites per sample (default 100000: 1e9 genotypes, ~40 GB, ~25 min)
#   QUERIES           carrier queries per measurement (default 2000)
#   BENCH_DIR         work dir (default: a new /tmp/omicsd-bench-store.XXXXXX; the database is removed
#                     at the end unless KEEP=1)
#   QUERY_ONLY=1      reuse BENCH_DIR/variants.db from an earlier KEEP=1 run (no load)
#   OMICSD_BUILD_DIR  build dir holding tests/bench_variant_store (built here when missing)
# Small and quick: SAMPLES=1000 SITES_PER_SAMPLE=10000 scripts/bench-store.sh
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }

SAMPLES="${SAMPLES:-10000}"
SITES_PER_SAMPLE="${SITES_PER_SAMPLE:-100000}"
QUERIES="${QUERIES:-2000}"
BUILD="$(build_dir)"
TOOL="$BUILD/tests/bench_variant_store"
if [[ ! -x $TOOL ]]; then
  log "building bench_variant_store in $BUILD"
  cmake --build "$BUILD" --target bench_variant_store -j"$(threads)" >&2
fi
BENCH_DIR="${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/omicsd-bench-store.XXXXXX")}"
mkdir -p "$BENCH_DIR"
DB="$BENCH_DIR/variants.db"
# Rough need: ~40 bytes per genotype (table + by-sample index) plus the index build's sort files.
NEED_GB=$(( SAMPLES * SITES_PER_SAMPLE * 60 / 1000000000 + 1 ))
AVAIL_GB=$(( $(df -Pk "$BENCH_DIR" | awk 'NR==2 {print $4}') / 1048576 ))
if [[ ${QUERY_ONLY:-0} != 1 ]] && (( AVAIL_GB < NEED_GB )); then
  die "need ~${NEED_GB} GB free under $BENCH_DIR, have ${AVAIL_GB} GB (lower SITES_PER_SAMPLE or set BENCH_DIR)"
fi
args=(--db "$DB" --samples "$SAMPLES" --sites-per-sample "$SITES_PER_SAMPLE" --queries "$QUERIES")
[[ ${QUERY_ONLY:-0} == 1 ]] && args+=(--query-only)
log "$(date -u +%FT%TZ) $(nproc) cores; ${SAMPLES} samples x ${SITES_PER_SAMPLE} sites; db $DB"
start=$(date +%s)
TMPDIR="$BENCH_DIR" "$TOOL" "${args[@]}" | tee "$BENCH_DIR/bench-store.txt"
log "wall time $(( $(date +%s) - start )) s; results in $BENCH_DIR/bench-store.txt"
if [[ ${KEEP:-0} != 1 && ${QUERY_ONLY:-0} != 1 ]]; then rm -f "$DB" "$DB-wal" "$DB-shm"; fi
