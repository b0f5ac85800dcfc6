#!/usr/bin/env bash
# Benchmark (not a test): time omicsd call against bcftools mpileup | call and freebayes on the
# same BAM. Each run is timed with GNU time -v (wall time, CPU time, peak RSS); the BAM, its
# index and the FASTA index exist before and are not timed.
#   omicsd call REF BAM -o omicsd.vcf.gz -t THREADS     (skipped, with a note, when the binary
#                                                        is missing or has no `call` subcommand)
#   bcftools mpileup -f REF BAM | bcftools call -mv     (single-threaded caller)
#   freebayes -f REF BAM                                 (single-threaded; Debian package
#                                                        `freebayes`; skipped when not installed)
# With a truth VCF every output is scored with scripts/eval-vcf.sh --pass-only --atomize
# (records whose FILTER is PASS or '.', MNPs/complex alleles split into SNPs and indels on both
# sides); freebayes, which sets no FILTER, is scored on its QUAL >= 20 calls as its README
# recommends; bcftools call -mv as it comes.
# Prints a Markdown table (tool, threads, wall s, CPU s, peak RSS MB, SNP F1, indel F1, tool's
# wall time / omicsd's) and writes it to WORKDIR/bench-call.md. Peak RSS of a pipeline is that
# of its largest process (GNU time reports the maximum over the processes, not their sum).
#
# Usage: scripts/bench-call.sh [BAM REF] [THREADS]
#   BAM REF    a coordinate-sorted, indexed BAM and its reference FASTA (indexed when the .bai or
#              .fai is missing). Without them: the simulated set of scripts/make-sim-data.sh
#              (E. coli 536 + repeats, 5.1 Mb; N_PAIRS 150 bp pairs, default 200000 = ~12x),
#              aligned once with bwa mem -R '@RG\tID:sim\tSM:sim' | samtools sort into
#              $OMICSD_DATA_DIR/sim-N_PAIRS/bwa.sorted.bam (cached, not timed); its truth is
#              truth.mutations.vcf there (dwgsim's sites-only list; zygosity from INFO/AF).
#   THREADS    omicsd threads (default nproc); bcftools and freebayes call on one thread
#   TRUTH      truth VCF to score against (default: the simulated set's; none for a given BAM)
#   REGIONS    BED / targets file restricting the scoring (eval-vcf.sh REGIONS)
#   N_PAIRS    size of the simulated set (default 200000)
#   OMICSD_CALL_ARGS  extra arguments for omicsd call (word-split)
#   BENCH_DIR  work dir (default: a new /tmp/omicsd-bench-call.XXXXXX); it is kept, the VCFs in
#              it are deleted unless KEEP=1
#   OMICSD_BIN, OMICSD_BUILD_DIR, OMICSD_DATA_DIR   see scripts/lib/common.sh
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }

BAM="" REF="" T=""
case $# in
  0) ;;
  1) T="$1" ;;
  2) BAM="$1"; REF="$2" ;;
  3) BAM="$1"; REF="$2"; T="$3" ;;
  *) usage >&2; exit 2 ;;
esac
T="${T:-$(threads)}"
[[ $T =~ ^[1-9][0-9]*$ ]] || die "THREADS must be a positive integer, got '$T'"
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found (install the 'time' package: scripts/setup.sh)"
need_tools bcftools samtools awk

TRUTH="${TRUTH:-}"
DATA_NOTE=""
if [[ -z $BAM ]]; then
  N_PAIRS="${N_PAIRS:-200000}"
  [[ $N_PAIRS =~ ^[1-9][0-9]*$ ]] || die "N_PAIRS must be a positive integer, got '$N_PAIRS'"
  need_tools bwa
  DATA="$(data_dir)/sim-$N_PAIRS"
  bash "$SCRIPTS_DIR/make-sim-data.sh" "$DATA" "$N_PAIRS"
  REF="$DATA/ref.fa"
  BAM="$DATA/bwa.sorted.bam"
  TRUTH="${TRUTH:-$DATA/truth.mutations.vcf}"
  if [[ ! -s $BAM.bai || ! $BAM -nt $DATA/reads_1.fq.gz || ! $BAM -nt $REF ]]; then
    bwa_index "$REF"
    log "aligning the simulated reads: bwa mem -t $T | samtools sort -> $BAM (not timed)"
    rm -f "$BAM" "$BAM.bai"
    bwa mem -t "$T" -R '@RG\tID:sim\tSM:sim' "$REF" "$DATA/reads_1.fq.gz" "$DATA/reads_2.fq.gz" \
      2>"$DATA/bwa.sorted.log" |
      samtools sort -@ "$T" -T "$DATA/bwa.sort.tmp" -o "$BAM.tmp.$$" - \
      || die "bwa mem | samtools sort failed (see $DATA/bwa.sorted.log)"
    mv "$BAM.tmp.$$" "$BAM"
    samtools index "$BAM"
  fi
  DATA_NOTE="simulated: $N_PAIRS read pairs (150 bp, dwgsim on E. coli 536 + repeats, 5.1 Mb), bwa mem | samtools sort"
else
  [[ -r $BAM ]] || die "cannot read BAM $BAM"
  [[ -r $REF ]] || die "cannot read reference $REF"
  if [[ ! -e $BAM.bai && ! -e ${BAM%.bam}.bai && ! -e $BAM.csi ]]; then
    log "samtools index $BAM"
    samtools index "$BAM" || die "$BAM has no index and samtools index failed"
  fi
  DATA_NOTE="$BAM"
fi
[[ -s $REF.fai && ! $REF.fai -ot $REF ]] || samtools faidx "$REF" || die "samtools faidx $REF failed"
[[ -z $TRUTH || -r $TRUTH ]] || die "cannot read TRUTH $TRUTH"
REGIONS="${REGIONS:-}"
[[ -z $REGIONS || -r $REGIONS ]] || die "cannot read REGIONS $REGIONS"

# omicsd: the binary and its `call` subcommand are optional here (the peers still run).
OMICSD="${OMICSD_BIN:-$(build_dir)/service/omicsd}"
OMICSD_NOTE=""
if [[ ! -x $OMICSD ]]; then
  OMICSD_NOTE="omicsd binary not found at $OMICSD (build it with scripts/build.sh or set OMICSD_BIN)"
  OMICSD=""
elif ! "$OMICSD" --help 2>/dev/null | grep -qE '^[[:space:]]+call([[:space:]]|$)'; then
  OMICSD_NOTE="$OMICSD has no 'call' subcommand yet"
  OMICSD=""
fi
[[ -z $OMICSD_NOTE ]] || log "skipping omicsd: $OMICSD_NOTE"
FREEBAYES_NOTE=""
if ! command -v freebayes >/dev/null 2>&1; then
  FREEBAYES_NOTE="freebayes not installed (Debian package 'freebayes')"
  log "skipping freebayes: $FREEBAYES_NOTE"
fi

if [[ -n ${BENCH_DIR:-} ]]; then
  WORK="$BENCH_DIR"
  mkdir -p "$WORK"
else
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/omicsd-bench-call.XXXXXX")"
fi
WORK="$(cd "$WORK" && pwd)"
cleanup() {
  [[ ${KEEP:-0} == 1 ]] || rm -f "$WORK"/*.vcf "$WORK"/*.vcf.gz "$WORK"/*.tbi "$WORK"/*.tmp.* "$WORK"/*.out
}
trap cleanup EXIT
cat "$BAM" "$REF" >/dev/null  # warm the page cache

ids=(); labels=(); threads_of=(); times=(); outs=()
bench() {  # ID LABEL THREADS OUT CMD... : time CMD (bash -c scripts get REF BAM T WORK in env)
  local id="$1" label="$2" thr="$3" out="$4"; shift 4
  local tf="$WORK/$id.time"
  log "running ${label//\\/}"
  if ! REF="$REF" BAM="$BAM" T="$T" WORK="$WORK" \
      timed "$tf" "$@" >"$WORK/$id.out" 2>"$WORK/$id.log"; then
    tail -5 "$WORK/$id.log" >&2
    die "$label failed (log: $WORK/$id.log)"
  fi
  ids+=("$id"); labels+=("$label"); threads_of+=("$thr"); times+=("$tf"); outs+=("$out")
  log "${label//\\/}: $(wall_s "$tf") s, peak RSS $(rss_mb "$tf") MB"
}

# shellcheck disable=SC2016  # the bash -c scripts expand their variables themselves
{
  if [[ -n $OMICSD ]]; then
    # shellcheck disable=SC2086  # OMICSD_CALL_ARGS is a list of words
    bench omicsd "omicsd call" "$T" "$WORK/omicsd.vcf.gz" \
      "$OMICSD" call "$REF" "$BAM" -o "$WORK/omicsd.vcf.gz" -t "$T" ${OMICSD_CALL_ARGS:-}
  fi
  bench bcftools "bcftools mpileup \| call -mv" 1 "$WORK/bcftools.vcf.gz" bash -c \
    'set -o pipefail; bcftools mpileup -f "$REF" "$BAM" -Ou 2>"$WORK/bcftools.mpileup.log" |
     bcftools call -mv -Oz -o "$WORK/bcftools.vcf.gz"'
  if [[ -z $FREEBAYES_NOTE ]]; then
    bench freebayes "freebayes" 1 "$WORK/freebayes.vcf" bash -c \
      'freebayes -f "$REF" "$BAM" >"$WORK/freebayes.vcf"'
  fi
}

# Scores: "SNP_F1 INDEL_F1" per tool, "- -" without a truth set.
declare -A SNP_F1 INDEL_F1
if [[ -n $TRUTH ]]; then
  for i in "${!ids[@]}"; do
    id="${ids[$i]}" out="${outs[$i]}"
    q="$out"
    if [[ $id == freebayes ]]; then
      q="$WORK/freebayes.q20.vcf.gz"
      bcftools view -i 'QUAL>=20' -Oz -o "$q" "$out" || die "cannot filter $out"
    fi
    log "scoring $id against $TRUTH"
    bash "$SCRIPTS_DIR/eval-vcf.sh" --pass-only --atomize --json "$WORK/$id.eval.json" \
      "$REF" "$TRUTH" "$q" ${REGIONS:+"$REGIONS"} >"$WORK/$id.eval.txt" 2>"$WORK/$id.eval.log" \
      || { cat "$WORK/$id.eval.log" >&2; die "eval-vcf.sh failed on $q"; }
    sed "s/^/  $id: /" "$WORK/$id.eval.txt" >&2
    SNP_F1[$id]="$(awk '$1 == "SNP" { for (i = 2; i <= NF; i++) if ($i ~ /^F1=/) print substr($i, 4) }' \
      "$WORK/$id.eval.txt")"
    INDEL_F1[$id]="$(awk '$1 == "INDEL" { for (i = 2; i <= NF; i++) if ($i ~ /^F1=/) print substr($i, 4) }' \
      "$WORK/$id.eval.txt")"
  done
fi

cpu_s() {
  awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.1f\n", s }' "$1"
}
omicsd_wall=""
for i in "${!ids[@]}"; do
  [[ ${ids[$i]} == omicsd ]] && omicsd_wall="$(wall_s "${times[$i]}")"
done
MD="$WORK/bench-call.md"
{
  echo "## omicsd call benchmark"
  echo
  echo "Data: $DATA_NOTE; reference $REF. $(nproc) cores" \
       "($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(date -u +%Y-%m-%dT%H:%MZ)."
  if [[ -n $TRUTH ]]; then
    echo "Scored against $TRUTH${REGIONS:+ in $REGIONS} with scripts/eval-vcf.sh --pass-only --atomize" \
         "(freebayes: QUAL >= 20 calls)."
  else
    echo "No truth set (TRUTH unset): F1 not computed."
  fi
  echo
  echo "| tool | threads | wall s | CPU s | peak RSS MB | SNP F1 | indel F1 | wall / omicsd wall |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  if [[ -n $OMICSD_NOTE ]]; then
    echo "| omicsd call | - | - | - | - | - | - | not run: $OMICSD_NOTE |"
  fi
  for i in "${!ids[@]}"; do
    id="${ids[$i]}" tf="${times[$i]}"
    w="$(wall_s "$tf")"
    ratio="$(awk -v w="$w" -v o="$omicsd_wall" 'BEGIN { print (o == "" || o == 0) ? "-" : sprintf("%.2f", w / o) }')"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "${labels[$i]}" "${threads_of[$i]}" "$w" \
      "$(cpu_s "$tf")" "$(rss_mb "$tf")" "${SNP_F1[$id]:--}" "${INDEL_F1[$id]:--}" "$ratio"
  done
  if [[ -n $FREEBAYES_NOTE ]]; then
    echo "| freebayes | - | - | - | - | - | - | not run: $FREEBAYES_NOTE |"
  fi
  echo
  echo "Peak RSS of a pipeline is that of its largest process. wall / omicsd wall > 1: omicsd is faster."
} >"$MD"
cat "$MD"
echo
echo "table written to $MD"
