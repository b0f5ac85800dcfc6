#!/usr/bin/env bash
# Variant-calling accuracy on real reads: NA12878 (GIAB HG001) 2x101 bp reads of hg19
# chr20:10.0-10.1 Mb (shared/data/hg001-chr20-100kb), turned back into FASTQ and aligned with omicsd
# itself against the shared chr20 FASTA, then called with omicsd and with bcftools (mpileup | call -mv)
# on the SAME BAM, and scored against the GIAB v3.3.2 truth with scripts/eval-giab.sh (inside the
# confident BED and over the whole read window, PASS records only).
#
# Usage: scripts/eval-call-real.sh [--check]
#   --check   exit 1 unless: inside confident.bed omicsd finds every truth variant (49: 45 SNPs, 4
#             indels) with no false PASS call; over reads_window.bed omicsd's SNP F1 and indel F1 are
#             each >= bcftools'; and `omicsd call` with 1 and 2 threads writes the same VCF body
#   OMICSD_SHARED_DATA  data dir (default: <repo>/../shared/data)
#   OMICSD_BIN, OMICSD_BUILD_DIR, OMICSD_DATA_DIR, THREADS, KEEP=1   see scripts/lib/common.sh
# Costs about 10 s on 2 cores: the chr20 FASTA is mostly N, so its index builds in under a second;
# the uncompressed FASTA and its index are cached in $OMICSD_DATA_DIR/hg001-chr20.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

parse_eval_args "$@"

need_tools samtools bcftools bgzip
DATA="$(shared_data_dir)/hg001-chr20-100kb"
BAM_IN="$DATA/NA12878_S1.chr20.10_10p1mb.bam"
for f in "$BAM_IN" "$DATA/ucsc.hg19.chr20.unittest.fasta.gz" "$DATA/truth.vcf.gz" "$DATA/confident.bed" \
  "$DATA/reads_window.bed"; do
  [[ -r $f ]] || die "test data not found: $f (set OMICSD_SHARED_DATA)"
done
OMICSD="$(omicsd_bin)"
T="$(threads)"
make_workdir WORK

# The reference is bgzipped and read-only in shared/: an uncompressed cached copy gets the indexes.
CACHE="$(data_dir)/hg001-chr20"
REF="$CACHE/chr20.fa"
mkdir -p "$CACHE"
if [[ ! -s $REF.fai || $REF -ot $DATA/ucsc.hg19.chr20.unittest.fasta.gz ]]; then
  log "unpacking the chr20 FASTA into $CACHE"
  bgzip -dc "$DATA/ucsc.hg19.chr20.unittest.fasta.gz" >"$REF.tmp.$$" && mv "$REF.tmp.$$" "$REF"
  samtools faidx "$REF"
fi
omicsd_index "$OMICSD" "$REF"

bam_to_fastq_pairs "$BAM_IN" "$WORK/r1.fq" "$WORK/r2.fq" "$WORK"
pairs=$(($(wc -l <"$WORK/r1.fq") / 4))
((pairs >= 25000)) || die "expected ~25,800 read pairs from $BAM_IN, got $pairs"
log "$pairs read pairs, $T threads"

BAM="$WORK/omicsd.bam"
timed "$WORK/align.time" "$OMICSD" --log-level warn align -t "$T" -R '@RG\tID:NA12878\tSM:NA12878' "$REF" \
  "$WORK/r1.fq" "$WORK/r2.fq" -o "$BAM"
log "omicsd align: $(wall_s "$WORK/align.time") s"
timed "$WORK/omicsd.time" "$OMICSD" --log-level warn call -t "$T" "$REF" "$BAM" -o "$WORK/omicsd.vcf.gz"
log "omicsd call: $(wall_s "$WORK/omicsd.time") s"
timed "$WORK/bcftools.time" bash -c "bcftools mpileup --threads $T -f '$REF' '$BAM' 2>/dev/null \
  | bcftools call --threads $T -mv -Oz -o '$WORK/bcftools.vcf.gz' 2>/dev/null"
log "bcftools mpileup | call: $(wall_s "$WORK/bcftools.time") s"

echo
bash "$SCRIPTS_DIR/eval-giab.sh" --window "$DATA/reads_window.bed" --against "$WORK/bcftools.vcf.gz" \
  --names omicsd,bcftools --tsv "$WORK/eval.tsv" "$REF" "$DATA/truth.vcf.gz" "$DATA/confident.bed" \
  "$WORK/omicsd.vcf.gz"
echo

if ((CHECK)); then
  ok=1
  # field SCOPE TYPE CALLER COLUMN: one number from eval-giab.sh's TSV (subset "all").
  field() {
    awk -F'\t' -v s="$1" -v t="$2" -v c="$3" -v col="$4" '
      NR == 1 { for (i = 1; i <= NF; i++) idx[$i] = i; next }
      $1 == s && $2 == t && $3 == "all" && $4 == c { print $idx[col] }' "$WORK/eval.tsv"
  }
  tp=$(($(field confident SNP omicsd tp) + $(field confident INDEL omicsd tp)))
  fn=$(($(field confident SNP omicsd fn) + $(field confident INDEL omicsd fn)))
  fp=$(($(field confident SNP omicsd fp) + $(field confident INDEL omicsd fp)))
  if ((fn == 0 && fp == 0 && tp == 49)); then
    echo "check: confident BED $tp/49 truth variants, $fp false PASS calls: PASS"
  else
    echo "check: confident BED $tp/49 truth variants ($fn missed), $fp false PASS calls: FAIL"
    ok=0
  fi
  for kind in SNP INDEL; do
    a="$(field window "$kind" omicsd f1)" b="$(field window "$kind" bcftools f1)"
    if awk -v a="$a" -v b="$b" 'BEGIN { exit !(a >= b) }'; then
      echo "check: window $kind F1 omicsd $a >= bcftools $b: PASS"
    else
      echo "check: window $kind F1 omicsd $a < bcftools $b: FAIL"
      ok=0
    fi
  done
  # Output must not depend on the thread count.
  "$OMICSD" --log-level warn call -t 1 "$REF" "$BAM" -o "$WORK/omicsd.t1.vcf.gz"
  if cmp -s <(bcftools view -H "$WORK/omicsd.t1.vcf.gz") <(bcftools view -H "$WORK/omicsd.vcf.gz"); then
    echo "check: --threads 1 and --threads $T VCF bodies identical: PASS"
  else
    echo "check: --threads 1 and --threads $T VCF bodies differ: FAIL"
    ok=0
  fi
  ((ok)) || exit 1
fi
