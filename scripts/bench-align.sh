#!/usr/bin/env bash
# Benchmark (not a test): time omicsd align against bwa mem and minimap2 -ax sr on the
# simulated data set (scripts/make-sim-data.sh), same reads, same threads. Each run is timed
# with GNU time -v (wall time, CPU time, peak RSS); indexes are built before and not timed.
#   omicsd align                      -> coordinate-sorted BAM + .bai
#   bwa mem | samtools sort; index    -> the same product, as a user would make it
#   bwa mem                           -> raw SAM
#   minimap2 -ax sr | samtools sort; index
#   minimap2 -ax sr                   -> raw SAM
# Prints a Markdown table (tool, wall s, CPU s, reads/s, peak RSS MB, omicsd reads/s divided
# by the tool's) and writes it to WORKDIR/bench-align.md. Peak RSS of a pipeline is that of
# its largest process (GNU time reports the maximum over the processes, not their sum).
#
# Usage: scripts/bench-align.sh [--peers-only] [N_PAIRS] [THREADS]
#   N_PAIRS default 200000; THREADS default $THREADS or nproc
#   --peers-only       skip omicsd (peer timings only, e.g. before omicsd is built)
#   BENCH_DIR          work dir (default: a new /tmp/omicsd-bench.XXXXXX); it is kept, the
#                      alignment outputs in it are deleted unless KEEP=1
#   OMICSD_BIN, OMICSD_BUILD_DIR, OMICSD_DATA_DIR   see scripts/lib/common.sh
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

PEERS_ONLY=0
pos=()
for a in "$@"; do
  case $a in
    --peers-only) PEERS_ONLY=1 ;;
    -h | --help) usage; exit 0 ;;
    [0-9]*) pos+=("$a") ;;
    *) die "unknown argument '$a' (usage: $0 [--peers-only] [N_PAIRS] [THREADS])" ;;
  esac
done
N_PAIRS="${pos[0]:-200000}"
T="${pos[1]:-$(threads)}"
[[ $T =~ ^[1-9][0-9]*$ ]] || die "THREADS must be a positive integer, got '$T'"

need_tools samtools bwa minimap2 python3
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found (install the 'time' package: scripts/setup.sh)"
OMICSD=""
((PEERS_ONLY)) || OMICSD="$(omicsd_bin)"

DATA="$(data_dir)/sim-$N_PAIRS"
bash "$SCRIPTS_DIR/make-sim-data.sh" "$DATA" "$N_PAIRS"
REF="$DATA/ref.fa"
R1="$DATA/reads_1.fq.gz"
R2="$DATA/reads_2.fq.gz"
READS=$((2 * N_PAIRS))

# Indexes, built before and not timed.
bwa_index "$REF"
MMI="$DATA/ref.sr.mmi"
if [[ ! -s $MMI || ! $MMI -nt $REF ]]; then
  log "minimap2 -x sr -d $MMI"
  minimap2 -x sr -d "$MMI" "$REF" 2>/dev/null
fi
if [[ -n $OMICSD ]]; then omicsd_index "$OMICSD" "$REF"; fi

if [[ -n ${BENCH_DIR:-} ]]; then
  WORK="$BENCH_DIR"
  mkdir -p "$WORK"
else
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/omicsd-bench.XXXXXX")"
fi
cleanup() {
  [[ ${KEEP:-0} == 1 ]] || rm -f "$WORK"/*.bam "$WORK"/*.bai "$WORK"/*.sam "$WORK"/*.tmp.* \
    "$WORK"/*.out
}
trap cleanup EXIT
cat "$R1" "$R2" >/dev/null  # warm the page cache

labels=(); times=()
bench() {  # ID LABEL CMD... : time CMD (bash -c scripts get REF MMI R1 R2 T WORK in env)
  local id="$1" label="$2"; shift 2
  local tf="$WORK/$id.time"
  log "running $label"
  if ! REF="$REF" MMI="$MMI" R1="$R1" R2="$R2" T="$T" WORK="$WORK" \
      timed "$tf" "$@" >"$WORK/$id.out" 2>"$WORK/$id.log"; then
    tail -5 "$WORK/$id.log" >&2
    die "$label failed (log: $WORK/$id.log)"
  fi
  labels+=("$label"); times+=("$tf")
  log "$label: $(wall_s "$tf") s, peak RSS $(rss_mb "$tf") MB"
}

# shellcheck disable=SC2016  # the bash -c scripts expand their variables themselves
{
  if [[ -n $OMICSD ]]; then
    bench omicsd "omicsd align (sorted BAM + index)" \
      "$OMICSD" align "$REF" "$R1" "$R2" -o "$WORK/omicsd.bam" -t "$T"
  fi
  bench bwa-sort "bwa mem \| samtools sort + index" bash -c \
    'set -o pipefail; bwa mem -t "$T" "$REF" "$R1" "$R2" 2>"$WORK/bwa-sort.bwa.log" |
     samtools sort -@ "$T" -T "$WORK/bwa.tmp" -o "$WORK/bwa.bam" - && samtools index "$WORK/bwa.bam"'
  bench bwa-sam "bwa mem (SAM)" bash -c 'bwa mem -t "$T" "$REF" "$R1" "$R2" >"$WORK/bwa.sam"'
  bench mm2-sort "minimap2 -ax sr \| samtools sort + index" bash -c \
    'set -o pipefail; minimap2 -ax sr -t "$T" "$MMI" "$R1" "$R2" 2>"$WORK/mm2-sort.mm2.log" |
     samtools sort -@ "$T" -T "$WORK/mm2.tmp" -o "$WORK/mm2.bam" - && samtools index "$WORK/mm2.bam"'
  bench mm2-sam "minimap2 -ax sr (SAM)" bash -c \
    'minimap2 -ax sr -t "$T" "$MMI" "$R1" "$R2" >"$WORK/mm2.sam"'
}

cpu_s() {
  awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.1f\n", s }' "$1"
}
omicsd_rps=""
if [[ -n $OMICSD ]]; then
  omicsd_rps="$(awk -v r="$READS" -v w="$(wall_s "${times[0]}")" 'BEGIN { printf "%.1f", r / w }')"
fi
MD="$WORK/bench-align.md"
{
  echo "## omicsd align benchmark"
  echo
  echo "$N_PAIRS read pairs ($READS reads, 150 bp, dwgsim on E. coli 536 + repeats, 5.1 Mb)," \
       "$T threads, $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1))," \
       "$(date -u +%Y-%m-%dT%H:%MZ). Indexes built beforehand, not timed."
  echo
  echo "| tool | wall s | CPU s | reads/s | peak RSS MB | omicsd reads/s / tool reads/s |"
  echo "|---|---:|---:|---:|---:|---:|"
  for i in "${!labels[@]}"; do
    tf="${times[$i]}"
    w="$(wall_s "$tf")"
    row="$(awk -v w="$w" -v c="$(cpu_s "$tf")" -v m="$(rss_mb "$tf")" \
        -v r="$READS" -v o="$omicsd_rps" 'BEGIN {
      rps = r / w
      ratio = (o == "") ? "-" : sprintf("%.2f", o / rps)
      printf "%.1f | %.1f | %.0f | %s | %s", w, c, rps, m, ratio }')"
    printf '| %s | %s |\n' "${labels[$i]}" "$row"
  done
  echo
  echo "Peak RSS of a pipeline is that of its largest process."
} >"$MD"
cat "$MD"
echo
echo "table written to $MD"
