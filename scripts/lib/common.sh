# shellcheck shell=bash
# Helpers shared by the scripts in scripts/ (sourced, not run).
# Usage: source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
#
# Environment understood by every script:
#   OMICSD_BUILD_DIR  build directory, relative to the repo root or absolute (default: build)
#   OMICSD_BIN        the omicsd binary (default: $OMICSD_BUILD_DIR/service/omicsd)
#   OMICSD_DATA_DIR   cache for generated data and peer indexes
#                     (default: ${XDG_CACHE_HOME:-$HOME/.cache}/omicsd)
#   THREADS           threads for every aligner (default: nproc)
#   KEEP=1            keep the temporary work directory

# shellcheck disable=SC2034  # used by the scripts that source this file
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SCRIPTS_DIR="$REPO_ROOT/scripts"
# shellcheck disable=SC2034
LIB_DIR="$SCRIPTS_DIR/lib"
PROG="$(basename "$0")"

log() { printf '[%s] %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

# Run as root, or through sudo when not root.
as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root (or sudo) to run: $*"
  fi
}

need_tools() {
  local t missing=()
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
  done
  ((${#missing[@]} == 0)) || die "missing tools: ${missing[*]} (run scripts/setup.sh)"
}

build_dir() {
  local d="${OMICSD_BUILD_DIR:-build}"
  [[ $d == /* ]] || d="$REPO_ROOT/$d"
  printf '%s\n' "$d"
}

# Print the omicsd binary path; fail with one clear line if it is missing.
omicsd_bin() {
  local b="${OMICSD_BIN:-$(build_dir)/service/omicsd}"
  [[ -x $b ]] || die "omicsd binary not found at $b: build it with scripts/build.sh (or set OMICSD_BIN)"
  printf '%s\n' "$b"
}

threads() { printf '%s\n' "${THREADS:-$(nproc)}"; }

data_dir() { printf '%s\n' "${OMICSD_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/omicsd}"; }

# make_workdir VAR: create a temp dir, store its path in VAR, remove it at exit unless KEEP=1.
make_workdir() {
  local d
  d="$(mktemp -d "${TMPDIR:-/tmp}/omicsd-${PROG%.sh}.XXXXXX")"
  printf -v "$1" '%s' "$d"
  if [[ ${KEEP:-0} == 1 ]]; then
    log "work dir (kept): $d"
  else
    # shellcheck disable=SC2064  # expand $d now
    trap "rm -rf '$d'" EXIT
  fi
}

# timed OUT.time CMD...: run CMD under GNU time -v, writing the report to OUT.time.
timed() {
  local out="$1"; shift
  /usr/bin/time -v -o "$out" "$@"
}

# wall_s OUT.time / rss_mb OUT.time: wall seconds and peak RSS (MB) from a GNU time -v report.
wall_s() {
  awk -F': ' '/Elapsed \(wall clock\)/ {
      n = split($2, p, ":"); s = 0
      for (i = 1; i <= n; i++) s = s * 60 + p[i]
      printf "%.2f\n", s }' "$1"
}
rss_mb() {
  awk -F': ' '/Maximum resident set size/ { printf "%.0f\n", $2 / 1024 }' "$1"
}

# bwa_index REF.fa: build the bwa index next to REF.fa unless it is newer than REF.fa.
bwa_index() {
  local ref="$1"
  if [[ -s $ref.bwt && -s $ref.sa && $ref.sa -nt $ref ]]; then
    return 0
  fi
  log "bwa index $ref"
  bwa index "$ref" 2>"$ref.bwa-index.log" || die "bwa index failed (see $ref.bwa-index.log)"
}

# omicsd_index OMICSD REF.fa: build REF.fa.omi unless it is newer than both REF.fa and the
# binary (a rebuilt binary may have a new index format).
omicsd_index() {
  local bin="$1" ref="$2"
  if [[ -s $ref.omi && $ref.omi -nt $ref && $ref.omi -nt $bin ]]; then
    return 0
  fi
  log "omicsd index $ref"
  "$bin" index "$ref" || die "omicsd index $ref failed"
}

# bam_to_fastq_pairs BAM R1.fq R2.fq WORKDIR: the read pairs of BAM as two FASTQ files (samtools
# collate | samtools fastq; singletons and unpaired reads dropped); dies unless both have as many records.
bam_to_fastq_pairs() {
  local bam="$1" r1="$2" r2="$3" tmp_dir="$4" n1 n2
  samtools collate -u -O "$bam" "$tmp_dir/collate" \
    | samtools fastq -1 "$r1" -2 "$r2" -0 /dev/null -s /dev/null -n - 2>"$tmp_dir/fastq.log"
  n1=$(($(wc -l <"$r1") / 4))
  n2=$(($(wc -l <"$r2") / 4))
  ((n1 == n2)) || die "samtools fastq wrote $n1 read-1 and $n2 read-2 records from $bam"
}

# usage: print the calling script's header comment (line 2 up to the first non-comment line).
usage() {
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
}

# shared_data_dir: the shared real test data (OMICSD_SHARED_DATA, default <repo>/../shared/data).
# Snakemake's environment for the GA4GH TES workflow test, and that test's work directory: outside the
# checkout and never under /tmp, because the host task runtime gives executors a private /tmp
# (service/runner/tes_runtime.cpp) and the executors run this environment's snakemake.
tes_engine_venv() { printf '%s\n' "${OMICSD_TES_ENGINE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/omicsd/venv/tes-engine}"; }
tes_work_dir() { printf '%s\n' "${OMICSD_TES_WORK_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/omicsd/tes-snakemake-work}"; }
shared_data_dir() { printf '%s\n' "${OMICSD_SHARED_DATA:-$REPO_ROOT/../shared/data}"; }
# A loopback port nobody listens on now (callers retry their start if one gets taken meanwhile).
pick_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      printf '%s\n' "$port"
      return 0
    fi
  done
  die "no free port found"
}

# install_venv DIR REQUIREMENTS_FILE: a virtual environment at DIR with the pinned Python packages of
# REQUIREMENTS_FILE (a path, or relative to the repository), rebuilt only when that file changes (its
# sha256 is kept in DIR). Pip's output goes to stderr, so callers may print DIR on stdout.
install_venv() {
  local dir="$1" req="$2"
  [[ $req == /* ]] || req="$REPO_ROOT/$req"
  local stamp; stamp="$(sha256sum "$req" | cut -d' ' -f1)"
  if [[ -f $dir/.requirements-sha256 && $(cat "$dir/.requirements-sha256") == "$stamp" ]]; then
    return 0
  fi
  rm -rf "$dir"
  python3 -m venv "$dir" >&2 &&
    "$dir/bin/pip" install -q --disable-pip-version-check -r "$req" >&2 &&
    echo "$stamp" >"$dir/.requirements-sha256" &&
    log "python env $dir installed from ${req#"$REPO_ROOT"/}"
}

# parse_eval_args "$@": the arguments every eval-*.sh takes. --check sets CHECK=1 (else 0); -h or
# --help prints the script's header and exits; a number sets N_PAIRS in scripts that take one (they
# set N_PAIRS to its default before calling); anything else dies with one line.
parse_eval_args() {
  CHECK=0
  local a
  for a in "$@"; do
    case $a in
      --check) CHECK=1 ;;
      -h | --help) usage; exit 0 ;;
      [0-9]*)
        [[ -n ${N_PAIRS+x} ]] || die "unknown argument '$a' (see $PROG --help)"
        N_PAIRS="$a"
        ;;
      *) die "unknown argument '$a' (see $PROG --help)" ;;
    esac
  done
}

# make_call_sim_data DIR N_PAIRS: the variant-calling data set of demo.sh and eval-call-sim.sh
# (scripts/make-sim-data.sh with more and longer indels than the alignment set), cached in DIR.
make_call_sim_data() {
  SIM_MUT_RATE=0.0012 SIM_INDEL_FRACTION=0.3 SIM_INDEL_EXTEND=0.85 \
    bash "$SCRIPTS_DIR/make-sim-data.sh" "$1" "$2"
}
