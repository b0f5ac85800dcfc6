#!/usr/bin/env bash
# Benchmark (not a test) of mapping on the human-scale test genome (issue 21): omicsd against
# `minimap2 -x sr` and `bwa mem` on the same simulated 2x150 bp pairs of known origin.
#   genome   scripts/make-human-scale-ref.sh --size $SIZE (cached)
#   reads    dwgsim, fixed seed, the parameters of tests/cli/test_human_scale_genome.cpp
#            (outer distance 400 +- 50, 0.2% errors, mutations 0.001 of which 15% indels, no random reads)
#   index    omicsd index; minimap2 -x sr -d; bwa index. Each is timed (GNU time -v: wall, peak RSS)
#            when built; a cached index is reused with the timing recorded when it was built
#            (omicsd's is rebuilt when the binary is newer).
#   mapping  omicsd align (sorted BAM + index); minimap2 -ax sr | samtools sort; bwa mem | samtools sort
#            (peak RSS of a pipeline is that of its largest process)
#   scoring  scripts/lib/eval_sim_sam.py: correct and wrong placements at MAPQ >= 20 and a MAPQ
#            calibration table per tool
# Writes a Markdown report to WORKDIR/bench-human-scale.md and prints it.
#
# Usage: scripts/bench-human-scale.sh
#   SIZE=small|quarter|full  test genome (default small, ~41 Mb; quarter ~0.8 Gb; full ~3.1 Gb)
#   PAIRS                    read pairs (default 20000 for small, 50000 otherwise)
#   SEED                     dwgsim seed (default 7)
#   TOOLS                    subset of "omicsd minimap2 bwa" (default all three)
#   BENCH_DIR                work dir (default: a new /tmp/omicsd-bench-hs.XXXXXX); BAMs deleted unless KEEP=1
#   OMICSD_BIN, OMICSD_BUILD_DIR, OMICSD_DATA_DIR, THREADS   see scripts/lib/common.sh
# A full-size bwa index takes hours on a small machine: time it on SIZE=quarter (a quarter of the
# bases) and scale, as docs/performance.md states where it does so.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

case ${1:-} in -h | --help) usage; exit 0 ;; "") ;; *) die "no arguments expected (see $PROG --help)" ;; esac
SIZE="${SIZE:-small}"
case $SIZE in small) default_pairs=20000 ;; quarter | full) default_pairs=50000 ;;
  *) die "SIZE must be small, quarter or full, got '$SIZE'" ;; esac
PAIRS="${PAIRS:-$default_pairs}"
SEED="${SEED:-7}"
TOOLS="${TOOLS:-omicsd minimap2 bwa}"
T="$(threads)"
[[ $PAIRS =~ ^[1-9][0-9]*$ ]] || die "PAIRS must be a positive integer, got '$PAIRS'"
[[ $SEED =~ ^[0-9]+$ ]] || die "SEED must be a non-negative integer, got '$SEED'"
[[ $T =~ ^[1-9][0-9]*$ ]] || die "THREADS must be a positive integer, got '$T'"
for tool in $TOOLS; do
  case $tool in omicsd | minimap2 | bwa) ;; *) die "unknown tool '$tool' in TOOLS (omicsd minimap2 bwa)" ;; esac
done
need_tools samtools dwgsim python3 $(for t in $TOOLS; do [[ $t == omicsd ]] || echo "$t"; done)
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found (install the 'time' package: scripts/setup.sh)"
OMICSD=""
[[ " $TOOLS " != *" omicsd "* ]] || OMICSD="$(omicsd_bin)"

DATA="$(data_dir)/human-scale-bench/$SIZE"
mkdir -p "$DATA"
REF="$DATA/genome.fa"
bash "$SCRIPTS_DIR/make-human-scale-ref.sh" --size "$SIZE" "$REF"
READS_PREFIX="$DATA/reads-$PAIRS-$SEED"
R1="$READS_PREFIX.bwa.read1.fastq.gz"
R2="$READS_PREFIX.bwa.read2.fastq.gz"
if [[ ! -s $R1 || ! -s $R2 || ! $R2 -nt $REF ]]; then
  log "dwgsim: $PAIRS pairs, seed $SEED"
  dwgsim -z "$SEED" -N "$PAIRS" -1 150 -2 150 -d 400 -s 50 -e 0.002 -E 0.002 -r 0.001 -R 0.15 -y 0 -n 0 \
    "$REF" "$READS_PREFIX.tmp" >"$DATA/dwgsim.log" 2>&1 || die "dwgsim failed (see $DATA/dwgsim.log)"
  for e in 1 2; do mv "$READS_PREFIX.tmp.bwa.read$e.fastq.gz" "$READS_PREFIX.bwa.read$e.fastq.gz"; done
  rm -f "$READS_PREFIX".tmp.*
fi
READS=$((2 * PAIRS))

if [[ -n ${BENCH_DIR:-} ]]; then
  WORK="$BENCH_DIR"
  mkdir -p "$WORK"
else
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/omicsd-bench-hs.XXXXXX")"
fi
cleanup() { [[ ${KEEP:-0} == 1 ]] || rm -f "$WORK"/*.bam "$WORK"/*.bai "$WORK"/*.tmp.*; }
trap cleanup EXIT

# timed_index NAME NEWEST_INPUT INDEX_FILE CMD...: build INDEX_FILE with CMD under GNU time unless it is
# newer than NEWEST_INPUT; its timing is kept beside it as INDEX_FILE.time for later runs.
timed_index() {
  local name="$1" input="$2" index="$3"; shift 3
  if [[ -s $index && -s $index.time && $index -nt $input ]]; then
    log "$name index: cached ($index)"
    return 0
  fi
  log "$name index: building $index"
  timed "$index.time.tmp" "$@" >"$WORK/$name-index.log" 2>&1 \
    || { tail -5 "$WORK/$name-index.log" >&2; die "$name index failed (log: $WORK/$name-index.log)"; }
  mv "$index.time.tmp" "$index.time"
}
# index_bytes FILE...: their total size
index_bytes() { du -cb "$@" | tail -1 | cut -f1; }

MMI="$DATA/genome.sr.mmi"
declare -A index_time index_size
for tool in $TOOLS; do
  case $tool in
    omicsd)
      newest="$REF"; [[ $OMICSD -nt $REF ]] && newest="$OMICSD"
      timed_index omicsd "$newest" "$REF.omi" "$OMICSD" index "$REF"
      index_time[omicsd]="$REF.omi.time"; index_size[omicsd]="$(index_bytes "$REF.omi")" ;;
    minimap2)
      timed_index minimap2 "$REF" "$MMI" minimap2 -x sr -t "$T" -d "$MMI" "$REF"
      index_time[minimap2]="$MMI.time"; index_size[minimap2]="$(index_bytes "$MMI")" ;;
    bwa)
      timed_index bwa "$REF" "$REF.sa" bwa index "$REF"
      index_time[bwa]="$REF.sa.time"
      index_size[bwa]="$(index_bytes "$REF".{amb,ann,bwt,pac,sa})" ;;
  esac
done

cat "$R1" "$R2" >/dev/null  # warm the page cache
declare -A map_time label
evals=()
# shellcheck disable=SC2016  # the bash -c scripts expand their variables themselves
for tool in $TOOLS; do
  tf="$WORK/$tool.time"
  case $tool in
    omicsd)
      label[omicsd]="omicsd align (sorted BAM + index)"
      cmd=("$OMICSD" align "$REF" "$R1" "$R2" -o "$WORK/omicsd.bam" -t "$T") ;;
    minimap2)
      label[minimap2]="minimap2 -ax sr \| samtools sort"
      cmd=(bash -c 'set -o pipefail; minimap2 -ax sr -t "$T" "$MMI" "$R1" "$R2" 2>"$WORK/minimap2.stderr" |
        samtools sort -@ "$T" -T "$WORK/minimap2.tmp" -o "$WORK/minimap2.bam" -') ;;
    bwa)
      label[bwa]="bwa mem \| samtools sort"
      cmd=(bash -c 'set -o pipefail; bwa mem -t "$T" "$REF" "$R1" "$R2" 2>"$WORK/bwa.stderr" |
        samtools sort -@ "$T" -T "$WORK/bwa.tmp" -o "$WORK/bwa.bam" -') ;;
  esac
  log "mapping with $tool"
  REF="$REF" MMI="$MMI" R1="$R1" R2="$R2" T="$T" WORK="$WORK" timed "$tf" "${cmd[@]}" \
    >"$WORK/$tool.log" 2>&1 || { tail -5 "$WORK/$tool.log" >&2; die "$tool failed (log: $WORK/$tool.log)"; }
  map_time[$tool]="$tf"
  evals+=("$tool=$WORK/$tool.bam")
  log "$tool: $(wall_s "$tf") s, peak RSS $(rss_mb "$tf") MB"
done

python3 "$LIB_DIR/eval_sim_sam.py" --min-mapq 20 --tol 5 --json "$WORK/eval.json" \
  --wrong-out "$WORK/wrong.tsv" "${evals[@]}" >"$WORK/eval.md"

MD="$WORK/bench-human-scale.md"
{
  echo "## Human-scale mapping benchmark (SIZE=$SIZE)"
  echo
  echo "Genome: scripts/make-human-scale-ref.sh --size $SIZE ($(wc -l <"$REF.fai") sequences," \
       "$(awk '{ s += $2 } END { printf "%.0f", s }' "$REF.fai") bases). Reads: $PAIRS dwgsim pairs" \
       "(seed $SEED, 2x150, $READS reads). $T threads, $(nproc) cores" \
       "($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(date -u +%Y-%m-%dT%H:%MZ)."
  echo "Command: SIZE=$SIZE PAIRS=$PAIRS SEED=$SEED THREADS=$T bash scripts/bench-human-scale.sh"
  echo
  echo "| tool | index build wall s | index build peak RSS MB | index MB | mapping wall s | reads/s |" \
       "mapping peak RSS MB | correct at MAPQ>=20 | wrong at MAPQ>=20 |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for tool in $TOOLS; do
    read -r correct wrong < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))[sys.argv[2]]
print("%.3f%% %d/%d" % (100 * r["correct_hq_frac"], r["hq_wrong"], r["hq_count"]))' "$WORK/eval.json" "$tool")
    it="${index_time[$tool]}" mt="${map_time[$tool]}"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${label[$tool]}" "$(wall_s "$it")" \
      "$(rss_mb "$it")" "$(awk -v b="${index_size[$tool]}" 'BEGIN { printf "%.0f", b / 1e6 }')" \
      "$(wall_s "$mt")" "$(awk -v r="$READS" -v w="$(wall_s "$mt")" 'BEGIN { printf "%.0f", r / w }')" \
      "$(rss_mb "$mt")" "$correct" "$wrong"
  done
  echo
  echo "Mapping wall time includes loading the index. Correct = true contig and unclipped start within 5 bp"
  echo "(primary records); wrong = mapped elsewhere, counted among reads with MAPQ >= 20."
  echo
  cat "$WORK/eval.md"
} >"$MD"
cat "$MD"
echo
echo "report written to $MD"
