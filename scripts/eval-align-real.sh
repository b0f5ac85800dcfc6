#!/usr/bin/env bash
# Acceptance test on real reads: align the NA12878 chr22 read pairs from shared/data with
# omicsd, bwa mem and minimap2 -ax sr (same reads, same threads) and compare each with bwa per
# read (scripts/lib/compare_sam.py): among the read ends bwa places with MAPQ >= 30, the
# fraction that the tool maps to the same contig, same strand, with the unclipped leftmost
# position (POS minus leading soft/hard clip) within 5 bp of bwa's. Primary records only,
# key = read name + read end (flag 0x40/0x80).
#
# Usage: scripts/eval-align-real.sh [--check]
#   --check             exit 1 unless omicsd's agreement is >= 97%
#   OMICSD_SHARED_DATA  data dir (default: <repo>/../shared/data)
#   OMICSD_BIN, OMICSD_BUILD_DIR, THREADS, KEEP=1   see scripts/lib/common.sh
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

MIN_AGREEMENT=97
parse_eval_args "$@"

need_tools samtools bwa minimap2 python3
DATA="$(shared_data_dir)/na12878-chr22-tiny"
BAM="$DATA/NA12878.chr22.tiny.bam"
[[ -r $BAM && -r $DATA/q.fa ]] || die "test data not found: $BAM, $DATA/q.fa (set OMICSD_SHARED_DATA)"
OMICSD="$(omicsd_bin)"
T="$(threads)"
make_workdir WORK

# Paired FASTQ from the BAM (singletons and unpaired reads are dropped).
bam_to_fastq_pairs "$BAM" "$WORK/r1.fq" "$WORK/r2.fq" "$WORK"
pairs=$(($(wc -l <"$WORK/r1.fq") / 4))
((pairs >= 1600 && pairs <= 1700)) || die "expected ~1630-1660 read pairs from $BAM, got $pairs"
log "$pairs read pairs from $(basename "$BAM"), $T threads"

# The reference is read-only in shared/: index a copy.
cp "$DATA/q.fa" "$WORK/q.fa"
REF="$WORK/q.fa"
bwa index "$REF" 2>"$WORK/bwa-index.log" || die "bwa index failed"
omicsd_index "$OMICSD" "$REF"

run_aligner() {  # NAME STDOUT_FILE CMD... : run and time CMD; on failure show its stderr
  local name="$1" out="$2"; shift 2
  local start=$SECONDS
  if ! "$@" >"$out" 2>"$WORK/$name.log"; then
    tail -5 "$WORK/$name.log" >&2
    die "$name failed: $*"
  fi
  log "$name: $((SECONDS - start)) s"
}
run_aligner bwa "$WORK/bwa.sam" bwa mem -t "$T" "$REF" "$WORK/r1.fq" "$WORK/r2.fq"
run_aligner minimap2 "$WORK/minimap2.sam" minimap2 -ax sr -t "$T" "$REF" "$WORK/r1.fq" "$WORK/r2.fq"
run_aligner omicsd /dev/null \
  "$OMICSD" align "$REF" "$WORK/r1.fq" "$WORK/r2.fq" -o "$WORK/omicsd.bam" -t "$T"
[[ -s $WORK/omicsd.bam ]] || die "omicsd align exited 0 but wrote no $WORK/omicsd.bam"
[[ -s $WORK/omicsd.bam.bai ]] || log "WARNING: omicsd wrote no $WORK/omicsd.bam.bai"

check_args=()
((CHECK)) && check_args=(--check "omicsd:$MIN_AGREEMENT")
python3 "$LIB_DIR/compare_sam.py" --min-mapq 30 --tol 5 --baseline "bwa=$WORK/bwa.sam" \
  "omicsd=$WORK/omicsd.bam" "minimap2=$WORK/minimap2.sam" "${check_args[@]}"
