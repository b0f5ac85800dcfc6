#!/usr/bin/env bash
# Haploid calling on real reads: an Ebola virus patient sample (ebov-g5012, 18,710 reads in 12 read
# groups, an unaligned BAM) run through `omicsd run --ploidy 1` (omicsd aligns it itself, keeping the
# read groups) against the EBOV Makona reference, scored by scripts/eval-vcf.sh (PASS records only)
# against the sample's consensus differences (13 SNPs, 2 indels) inside consensus_covered.bed; with
# bcftools mpileup | call -mv -p 1 on the same BAM side by side for reference.
#
# Usage: scripts/eval-call-haploid.sh [--check]
#   --check   exit 1 unless omicsd finds 13/13 SNPs and 2/2 indels with no false call, its VCF is
#             haploid (GT of one allele) and the BAM keeps the 12 @RG lines and every read's RG tag
#   THREADS, OMICSD_BIN, OMICSD_BUILD_DIR, OMICSD_SHARED_DATA, KEEP   see scripts/lib/common.sh
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

parse_eval_args "$@"

need_tools samtools bcftools
OMICSD="$(omicsd_bin)"
T="$(threads)"
SHARED="$(shared_data_dir)"
DATA="$SHARED/ebov-g5012"
[[ -f $DATA/G5012.3.testreads.bam ]] || die "shared data not found at $DATA (set OMICSD_SHARED_DATA)"
make_workdir WORK
cp "$DATA/ebov-makona.fasta" "$WORK/ref.fa"  # the index (ref.fa.omi) is written next to it
REF="$WORK/ref.fa"
TRUTH="$DATA/truth.vcf.gz"
BED="$DATA/consensus_covered.bed"

log "omicsd run --ploidy 1 (align + call, $T threads)"
timed "$WORK/omicsd.time" "$OMICSD" --log-level warn run -t "$T" --ploidy 1 "$REF" \
  "$DATA/G5012.3.testreads.bam" -o "$WORK/run"
BAM="$WORK/run/G5012.3.bam"
[[ -s $BAM && -s $WORK/run/G5012.3.vcf.gz ]] || die "omicsd run did not write G5012.3.bam / G5012.3.vcf.gz"
cp "$WORK/run/G5012.3.vcf.gz" "$WORK/omicsd.vcf.gz"
log "bcftools mpileup | call -mv -p 1 on the same BAM"
timed "$WORK/bcftools.time" bash -c "bcftools mpileup --threads $T -f '$REF' '$BAM' 2>/dev/null \
  | bcftools call --threads $T -mv -p 1 -Oz -o '$WORK/bcftools.vcf.gz' 2>/dev/null"

declare -A R
printf '\n| caller | wall s | SNP tp | SNP fp | SNP fn | indel tp | indel fp | indel fn |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|\n'
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
for tool in omicsd bcftools; do
  res="$(bash "$SCRIPTS_DIR/eval-vcf.sh" --pass-only "$REF" "$TRUTH" "$WORK/$tool.vcf.gz" "$BED")"
  snp="$(grep '^SNP' <<<"$res")"
  ind="$(grep '^INDEL' <<<"$res")"
  for k in tp fp fn; do
    R[$tool.snp.$k]="$(field $k "$snp")"
    R[$tool.indel.$k]="$(field $k "$ind")"
  done
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$tool" "$(wall_s "$WORK/$tool.time")" \
    "${R[$tool.snp.tp]}" "${R[$tool.snp.fp]}" "${R[$tool.snp.fn]}" \
    "${R[$tool.indel.tp]}" "${R[$tool.indel.fp]}" "${R[$tool.indel.fn]}"
done
echo

# Read groups: the input's @RG lines in the BAM header, and each read's RG tag as in the input.
rg_in="$(samtools view -H "$DATA/G5012.3.testreads.bam" | grep -c '^@RG' || true)"
rg_out="$(samtools view -H "$BAM" | grep -c '^@RG' || true)"
rg_tags() { samtools view -F 0x900 "$1" | awk '{ for (i = 12; i <= NF; i++) if ($i ~ /^RG:Z:/) print $1, $i }' | sort -u; }
rg_tags "$DATA/G5012.3.testreads.bam" >"$WORK/rg.in"
rg_tags "$BAM" >"$WORK/rg.out"
rg_same=0
[[ -s $WORK/rg.in ]] && cmp -s "$WORK/rg.in" "$WORK/rg.out" && rg_same=1
# Haploid output: no GT with a separator.
diploid_gts="$(bcftools query -f '[%GT]\n' "$WORK/omicsd.vcf.gz" | grep -c '[/|]' || true)"
echo "read groups: $rg_out of $rg_in @RG lines kept; per-read RG tags identical: $((rg_same)) ($(wc -l <"$WORK/rg.in") read names)"
echo "omicsd records with a non-haploid GT: $diploid_gts"

if ((CHECK)); then
  ok=1
  check() {  # check WHAT CONDITION...
    local what="$1"; shift
    if "$@"; then echo "check: $what: PASS"; else echo "check: $what: FAIL"; ok=0; fi
  }
  check "SNPs ${R[omicsd.snp.tp]}/13, none false (${R[omicsd.snp.fp]})" \
    test "${R[omicsd.snp.tp]}" -eq 13 -a "${R[omicsd.snp.fp]}" -eq 0
  check "indels ${R[omicsd.indel.tp]}/2, none false (${R[omicsd.indel.fp]})" \
    test "${R[omicsd.indel.tp]}" -eq 2 -a "${R[omicsd.indel.fp]}" -eq 0
  check "haploid GTs only" test "$diploid_gts" -eq 0
  check "12 @RG lines and every read's RG tag kept" test "$rg_in" -eq 12 -a "$rg_out" -eq 12 -a "$rg_same" -eq 1
  ((ok)) || exit 1
fi
