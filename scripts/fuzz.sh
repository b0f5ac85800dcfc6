#!/usr/bin/env bash
# Build the libFuzzer harnesses (tests/fuzz/fuzz_*.cpp: JSON bodies of the routes, Range / query /
# region / variant / CIDR / URL fields, BED, FASTQ and FASTA readers) with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer, and run each for SECONDS (default 60) from its committed seed corpus
# (tests/fuzz/corpus/<name>, seeded from ../shared/data/edge-cases). New inputs go to a work corpus in
# the build directory, never into the repository. Exits non-zero when any harness finds a crash,
# leak, sanitizer error or timeout; the reproducer is left in $FUZZ_BUILD_DIR/artifacts/<name>/ (turn
# it into a regression test, then add it to the seed corpus).
#
# Usage: scripts/fuzz.sh [SECONDS] [NAME...]      e.g. scripts/fuzz.sh 30 json_body bed
#   SECONDS 0 builds the harnesses without running them.
#   FUZZ_BUILD_DIR  build directory (default: build-fuzz)
#   JOBS            parallel build jobs (default: nproc)
#   CXX             a clang++ (default: clang++)
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }
SECONDS_EACH="${1:-60}"
[[ $SECONDS_EACH =~ ^[0-9]+$ ]] || die "SECONDS must be a number, got '$SECONDS_EACH'"
shift || true
NAMES=("$@")
((${#NAMES[@]})) || NAMES=(json_body http_fields bed fastq fasta)
CXX="${CXX:-clang++}"
need_tools cmake ninja "$CXX"
"$CXX" --version | grep -qi clang || die "$CXX is not clang (libFuzzer needs clang)"

BUILD="${FUZZ_BUILD_DIR:-build-fuzz}"
[[ $BUILD == /* ]] || BUILD="$REPO_ROOT/$BUILD"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
log "configuring $BUILD ($CXX, $SAN)"
# -O1 with line tables only: sanitizer reports keep file:line, and the tree (every engine and service
# source, instrumented) compiles in about half the time of -O2 -g on CI's two cores.
cmake -S "$REPO_ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Fuzz -DCMAKE_CXX_COMPILER="$CXX" \
  -DOMICSD_CUDA=OFF -DOMICSD_BUILD_TESTS=OFF -DOMICSD_FUZZ=ON \
  "-DCMAKE_CXX_FLAGS=-O1 -gline-tables-only -fsanitize=fuzzer-no-link $SAN -fno-omit-frame-pointer" \
  "-DCMAKE_EXE_LINKER_FLAGS=$SAN" >&2
targets=()
for n in "${NAMES[@]}"; do targets+=("fuzz_$n"); done
log "building ${targets[*]} with ${JOBS:-$(nproc)} jobs"
cmake --build "$BUILD" -j "${JOBS:-$(nproc)}" --target "${targets[@]}" >&2

((SECONDS_EACH > 0)) || { log "built: ${targets[*]} (SECONDS=0: not run)"; exit 0; }

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
for n in "${NAMES[@]}"; do
  seeds="$REPO_ROOT/tests/fuzz/corpus/$n"
  work="$BUILD/corpus/$n"
  art="$BUILD/artifacts/$n"
  [[ -d $seeds ]] || die "no seed corpus at $seeds"
  mkdir -p "$work" "$art"
  log "fuzz_$n: ${SECONDS_EACH}s from $(find "$seeds" -type f | wc -l) seeds"
  if "$BUILD/tests/fuzz/fuzz_$n" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
      -max_len=65536 -print_final_stats=1 -artifact_prefix="$art/" "$work" "$seeds" \
      >"$BUILD/fuzz_$n.log" 2>&1; then
    log "fuzz_$n: clean ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$BUILD/fuzz_$n.log" |
      grep -o '[0-9]*$') runs)"
  else
    log "fuzz_$n: FOUND A PROBLEM (log $BUILD/fuzz_$n.log, reproducer in $art/)"
    tail -30 "$BUILD/fuzz_$n.log" >&2
    failed+=("$n")
  fi
done
((${#failed[@]} == 0)) || die "findings in: ${failed[*]}"
log "all clean: ${NAMES[*]}"
