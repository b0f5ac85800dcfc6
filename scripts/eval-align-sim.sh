#!/usr/bin/env bash
# Accuracy on simulated reads with known truth: make the dwgsim data set
# (scripts/make-sim-data.sh), align it with omicsd, bwa mem and minimap2 -ax sr (same threads),
# and score every read against the origin in its name (scripts/lib/eval_sim_sam.py):
# correct = same contig and unclipped start (POS minus leading clip) within 5 bp of the true
# start. Reports per tool the fraction of all reads placed correctly at MAPQ >= 20, the error
# rate among reads with MAPQ >= 20, and a MAPQ calibration table.
#
# Usage: scripts/eval-align-sim.sh [--check] [N_PAIRS]      (N_PAIRS default 200000)
#   --check          exit 1 unless omicsd's correct fraction at MAPQ >= 20 is >= bwa's
#   OMICSD_DATA_DIR  data cache; the data set and the bwa/minimap2/omicsd indexes are kept in
#                    $OMICSD_DATA_DIR/sim-N_PAIRS (default ~/.cache/omicsd/sim-N_PAIRS)
#   OMICSD_BIN, OMICSD_BUILD_DIR, THREADS, KEEP=1   see scripts/lib/common.sh
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

N_PAIRS=200000
parse_eval_args "$@"

need_tools samtools bwa minimap2 python3
OMICSD="$(omicsd_bin)"
T="$(threads)"
DATA="$(data_dir)/sim-$N_PAIRS"
bash "$SCRIPTS_DIR/make-sim-data.sh" "$DATA" "$N_PAIRS"
REF="$DATA/ref.fa"
R1="$DATA/reads_1.fq.gz"
R2="$DATA/reads_2.fq.gz"
bwa_index "$REF"
omicsd_index "$OMICSD" "$REF"
make_workdir WORK

run_aligner() {  # NAME STDOUT_FILE CMD... : run and time CMD; on failure show its stderr
  local name="$1" out="$2"; shift 2
  local start=$SECONDS
  if ! "$@" >"$out" 2>"$WORK/$name.log"; then
    tail -5 "$WORK/$name.log" >&2
    die "$name failed: $*"
  fi
  log "$name: $((SECONDS - start)) s"
}
log "aligning $N_PAIRS pairs with $T threads"
run_aligner omicsd /dev/null "$OMICSD" align "$REF" "$R1" "$R2" -o "$WORK/omicsd.bam" -t "$T"
[[ -s $WORK/omicsd.bam ]] || die "omicsd align exited 0 but wrote no $WORK/omicsd.bam"
run_aligner bwa "$WORK/bwa.sam" bwa mem -t "$T" "$REF" "$R1" "$R2"
run_aligner minimap2 "$WORK/minimap2.sam" minimap2 -ax sr -t "$T" "$REF" "$R1" "$R2"

check_args=()
((CHECK)) && check_args=(--check-ge omicsd bwa)
python3 "$LIB_DIR/eval_sim_sam.py" --min-mapq 20 --tol 5 --json "$WORK/eval-sim.json" \
  --wrong-out "$WORK/wrong.tsv" \
  "omicsd=$WORK/omicsd.bam" "bwa=$WORK/bwa.sam" "minimap2=$WORK/minimap2.sam" \
  "${check_args[@]}"
