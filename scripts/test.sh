#!/usr/bin/env bash
# The project's test command (what CI runs): install packages, build, check the include layer order
# (scripts/check-layers.py), run the GoogleTest
# suites with ctest, then the acceptance checks: real reads (omicsd vs bwa mem on NA12878,
# scripts/eval-align-real.sh --check) and simulated reads with known origin (omicsd vs bwa mem,
# scripts/eval-align-sim.sh --check; OMICSD_SIM_PAIRS pairs, default 200000) and variant calls vs
# bcftools on a simulated BAM (scripts/eval-call-sim.sh --check; OMICSD_CALL_SIM_PAIRS, 500000), on
# real NA12878 reads against GIAB truth (scripts/eval-call-real.sh --check) and haploid calls on a
# real virus sample (scripts/eval-call-haploid.sh --check), and the fuzzers
# (scripts/fuzz.sh, OMICSD_FUZZ_SECONDS per harness, default 15; 0 skips them), and GA4GH TES with
# real clients (scripts/tes-test.sh: py-tes, Snakemake's TES executor). Exits
# non-zero when any stage fails; runs every test stage even after a failure so one run shows all of them.
#
# Usage: scripts/test.sh
#   OMICSD_BUILD_DIR, OMICSD_CUDA   as for scripts/build.sh
#   OMICSD_SHARED_DATA              test data (default: <repo>/../shared/data)
#   CTEST_JOBS                      ctest parallelism (default: 2)
#   OMICSD_SIM_PAIRS                simulated read pairs for the alignment check (default 200000)
#   OMICSD_CALL_SIM_PAIRS           simulated read pairs for the calling check (default 500000)
#   OMICSD_FUZZ_SECONDS             seconds per libFuzzer harness (default 15; 0: not run)
#   OMICSD_FUZZ_START_BY            skip the fuzzers when this many seconds have passed (default 1500,
#                                   so the whole run stays within CI's 45-minute budget)
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }

t0=$SECONDS
bash "$SCRIPTS_DIR/setup.sh"
bash "$SCRIPTS_DIR/build.sh" >/dev/null  # build.sh prints the binary path on stdout
log "build done in $((SECONDS - t0)) s"
BUILD="$(build_dir)"
export OMICSD_BIN="${OMICSD_BIN:-$BUILD/service/omicsd}"

failed=()      # names of the failed stages
passed=0       # tests passed (ctest tests + the acceptance check)
n_fail=0       # tests failed

# The layer order of includes (host < cuda < backends < service/util .. service/cli; docs/architecture.md).
if python3 "$SCRIPTS_DIR/check-layers.py"; then
  passed=$((passed + 1))
else
  failed+=("check-layers.py")
  n_fail=$((n_fail + 1))
fi

# Unit and integration tests. --no-tests=error: a build that registers no test is a failure.
ctest_log="$(mktemp)"
trap 'rm -f "$ctest_log"' EXIT
set +e
ctest --test-dir "$BUILD" --output-on-failure --no-tests=error -j "${CTEST_JOBS:-2}" 2>&1 \
  | tee "$ctest_log"
ctest_rc=${PIPESTATUS[0]}
set -e
# "100% tests passed, 0 tests failed out of 12" -> passed += 12 - 0
read -r n_failed n_total < <(sed -n \
  's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\1 \2/p' "$ctest_log" \
  | tail -1) || true
if [[ -n ${n_total:-} ]]; then
  passed=$((passed + n_total - n_failed))
fi
if ((ctest_rc != 0)); then
  failed+=("ctest${n_failed:+ ($n_failed failed)}")
  n_fail=$((n_fail + ${n_failed:-0}))
  [[ ${n_failed:-0} -gt 0 ]] || n_fail=$((n_fail + 1))  # ctest itself failed (no tests?)
fi

# The PostgreSQL job-store tests skip themselves where no PostgreSQL server is installed; here
# (setup.sh installs the postgresql package) they must run: a skipped or absent one is a failure.
pg_skipped="$(grep -cE 'Test +#[0-9]+: [^ ]*[Pp]ostgres[^ ]* .*\*\*\*Skipped' "$ctest_log" || true)"
pg_passed="$(grep -cE 'Test +#[0-9]+: [^ ]*[Pp]ostgres[^ ]* .* Passed' "$ctest_log" || true)"
if ((pg_skipped > 0)); then
  log "$pg_skipped PostgreSQL test(s) skipped: is the postgresql package installed? (scripts/setup.sh)"
  failed+=("PostgreSQL tests skipped ($pg_skipped)")
  n_fail=$((n_fail + pg_skipped))
elif ((pg_passed == 0)); then
  log "no PostgreSQL job-store test passed"
  failed+=("PostgreSQL tests missing")
  n_fail=$((n_fail + 1))
else
  log "$pg_passed PostgreSQL test(s) passed"
fi

# Acceptance on real reads.
if bash "$SCRIPTS_DIR/eval-align-real.sh" --check; then
  passed=$((passed + 1))
else
  failed+=("eval-align-real.sh --check")
  n_fail=$((n_fail + 1))
fi

# Acceptance on simulated reads with known origin (>= 5 Mb reference with repeats, planted SNPs
# and indels): omicsd's fraction placed correctly at MAPQ >= 20 must be at least bwa mem's.
if bash "$SCRIPTS_DIR/eval-align-sim.sh" --check "${OMICSD_SIM_PAIRS:-200000}"; then
  passed=$((passed + 1))
else
  failed+=("eval-align-sim.sh --check")
  n_fail=$((n_fail + 1))
fi

# Variant calling on simulated reads at ~30x with SNPs and 1-30 bp indels: omicsd call's SNP and
# indel F1 must both be at least bcftools' on the same BAM.
if bash "$SCRIPTS_DIR/eval-call-sim.sh" --check "${OMICSD_CALL_SIM_PAIRS:-500000}"; then
  passed=$((passed + 1))
else
  failed+=("eval-call-sim.sh --check")
  n_fail=$((n_fail + 1))
fi

# Variant calling on real reads (NA12878, GIAB truth, hg19 chr20:10.0-10.1 Mb) aligned by omicsd:
# every confident truth variant found with no false PASS call, and SNP / indel F1 over the read window
# at least bcftools' on the same BAM; output identical for 1 and 2 threads.
if bash "$SCRIPTS_DIR/eval-call-real.sh" --check; then
  passed=$((passed + 1))
else
  failed+=("eval-call-real.sh --check")
  n_fail=$((n_fail + 1))
fi

# Haploid calling on real reads (an Ebola virus sample, unaligned BAM with 12 read groups, aligned
# and called by `omicsd run --ploidy 1`): 13/13 SNPs, 2/2 indels, no false call, read groups kept.
# Seconds.
if bash "$SCRIPTS_DIR/eval-call-haploid.sh" --check; then
  passed=$((passed + 1))
else
  failed+=("eval-call-haploid.sh --check")
  n_fail=$((n_fail + 1))
fi

# GA4GH TES with real clients: py-tes (tasks, logs, cancel, failing executors, a worker killed and
# retried) and Snakemake's TES executor running a small workflow on omicsd (scripts/tes-test.sh).
if bash "$SCRIPTS_DIR/tes-test.sh"; then
  passed=$((passed + 1))
else
  failed+=("tes-test.sh")
  n_fail=$((n_fail + 1))
fi

# Every parser of outside bytes under libFuzzer + ASan/UBSan for a short time, from the committed
# seed corpus (tests/fuzz/corpus); a finding leaves its reproducer in build-fuzz/artifacts/.
# Building them (clang + sanitizers, the whole service library) takes about 25 minutes on a 2-core
# machine, so the stage runs only when the stages before it left that much of CI's 90 minutes
# (OMICSD_FUZZ_START_BY: seconds since test.sh started, default 1500); otherwise it says so and skips.
if ((${OMICSD_FUZZ_SECONDS:-15} > 0)) && ((SECONDS - t0 > ${OMICSD_FUZZ_START_BY:-1500})); then
  log "fuzz.sh skipped: $((SECONDS - t0)) s already spent (OMICSD_FUZZ_START_BY=${OMICSD_FUZZ_START_BY:-1500})"
elif ((${OMICSD_FUZZ_SECONDS:-15} > 0)); then
  if bash "$SCRIPTS_DIR/fuzz.sh" "${OMICSD_FUZZ_SECONDS:-15}"; then
    passed=$((passed + 1))
  else
    failed+=("fuzz.sh")
    n_fail=$((n_fail + 1))
  fi
fi

log "finished in $((SECONDS - t0)) s"
if ((${#failed[@]})); then
  log "FAILED: ${failed[*]}"
  echo "test.sh: $passed passed, $n_fail failed"
  exit 1
fi
echo "test.sh: $passed passed, 0 failed"
