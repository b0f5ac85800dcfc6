#!/usr/bin/env bash
# Variant-calling accuracy on simulated data with known truth: omicsd call vs bcftools
# (mpileup | call -mv) on the SAME BAM (aligned by omicsd align), scored by scripts/eval-vcf.sh
# (normalised, multi-allelics split; SNP and indel precision/recall/F1 separately).
# Data: scripts/make-sim-data.sh on E. coli 536 + repeat contig (5.12 Mb) with more and longer
# indels than the alignment set (dwgsim -r 0.0012 -R 0.3 -X 0.85: a few thousand SNPs and ~1,500
# indels of 1 to ~57 bp, 99% up to 30 bp; a third homozygous), 150 bp pairs at ~30x (500k pairs).
#
# Usage: scripts/eval-call-sim.sh [--check] [N_PAIRS]
#   --check   exit 1 unless omicsd's SNP F1 and indel F1 are both >= bcftools'
#   THREADS, OMICSD_BIN, OMICSD_DATA_DIR, KEEP   see scripts/lib/common.sh
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

N_PAIRS=500000
parse_eval_args "$@"

need_tools samtools bcftools python3
OMICSD="$(omicsd_bin)"
T="$(threads)"
DATA="$(data_dir)/call-sim-$N_PAIRS"
make_call_sim_data "$DATA" "$N_PAIRS"
REF="$DATA/ref.fa"
TRUTH="$DATA/truth.mutations.vcf"
omicsd_index "$OMICSD" "$REF"
make_workdir WORK

BAM="$DATA/omicsd.sorted.bam"
if [[ ! -s $BAM.bai || $BAM -ot $OMICSD || $BAM -ot $DATA/reads_1.fq.gz ]]; then
  # Duplicates flagged as `omicsd run` does by default: both callers then skip them.
  log "aligning $N_PAIRS pairs with omicsd align --mark-duplicates ($T threads)"
  "$OMICSD" --log-level warn align -t "$T" --mark-duplicates -R '@RG\tID:sim\tSM:sim' "$REF" "$DATA/reads_1.fq.gz" \
    "$DATA/reads_2.fq.gz" -o "$BAM"
fi

log "omicsd call"
timed "$WORK/omicsd.time" "$OMICSD" --log-level warn call -t "$T" "$REF" "$BAM" -o "$WORK/omicsd.vcf.gz"
log "bcftools mpileup | call -mv"
timed "$WORK/bcftools.time" bash -c "bcftools mpileup --threads $T -f '$REF' '$BAM' 2>/dev/null \
  | bcftools call --threads $T -mv -Oz -o '$WORK/bcftools.vcf.gz' 2>/dev/null"

declare -A F1
printf '\n| caller | wall s | SNP tp | SNP fp | SNP fn | SNP F1 | indel tp | indel fp | indel fn | indel F1 |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for tool in omicsd bcftools; do
  res="$(bash "$SCRIPTS_DIR/eval-vcf.sh" "$REF" "$TRUTH" "$WORK/$tool.vcf.gz")"
  snp="$(grep '^SNP' <<<"$res")"
  ind="$(grep '^INDEL' <<<"$res")"
  field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
  F1[$tool.snp]="$(field F1 "$snp")"
  F1[$tool.indel]="$(field F1 "$ind")"
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$tool" "$(wall_s "$WORK/$tool.time")" \
    "$(field tp "$snp")" "$(field fp "$snp")" "$(field fn "$snp")" "${F1[$tool.snp]}" \
    "$(field tp "$ind")" "$(field fp "$ind")" "$(field fn "$ind")" "${F1[$tool.indel]}"
done
echo

if ((CHECK)); then
  ok=1
  for kind in snp indel; do
    if awk -v a="${F1[omicsd.$kind]}" -v b="${F1[bcftools.$kind]}" 'BEGIN { exit !(a >= b) }'; then
      echo "check: omicsd $kind F1 ${F1[omicsd.$kind]} >= bcftools ${F1[bcftools.$kind]}: PASS"
    else
      echo "check: omicsd $kind F1 ${F1[omicsd.$kind]} < bcftools ${F1[bcftools.$kind]}: FAIL"
      ok=0
    fi
  done
  ((ok)) || exit 1
fi
