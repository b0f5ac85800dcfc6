#!/usr/bin/env bash
# Compare a query VCF with a truth VCF: small-variant precision / recall / F1 for SNPs and indels.
#
# Usage: scripts/eval-vcf.sh [options] REF.fa TRUTH.vcf[.gz] QUERY.vcf[.gz] [REGIONS]
#   --json OUT        also write the numbers as JSON to OUT
#   --pass-only       query: keep only records whose FILTER is PASS (or '.')
#   --atomize         split MNPs / complex alleles into SNPs and simple indels (bcftools norm -a)
#                     on both sides before matching (for callers such as freebayes that emit them)
#   --check-ref MODE  what bcftools norm does when a REF differs from REF.fa: e (exit, default),
#                     w (warn), x (exclude the record), s (set REF from the FASTA)
#   REGIONS           restrict both sides to these regions: a BED file (name ending .bed or
#                     .bed.gz: 0-based, half-open) or a bcftools targets file (tab-separated
#                     CHROM, POS[, END], 1-based inclusive). Applied after normalisation.
#
# Each side is prepared the same way: the first sample only (`bcftools query -l`), split
# multiallelics and left-align indels against REF.fa (bcftools norm -m- -f REF.fa), keep the
# records whose genotype carries a non-reference allele (GT="alt"), drop '*', '.' and symbolic
# (<...>) alleles, one record per CHROM:POS:REF:ALT. A sites-only VCF (no sample column, e.g.
# dwgsim's truth.mutations.vcf) counts every record as a variant, zygosity from INFO/AF
# (>= 0.99 hom, otherwise het; unknown without AF).
# Records match on CHROM/POS/REF/ALT. SNP: REF and ALT one base each; INDEL: REF and ALT of
# different lengths; MNPs and other same-length substitutions are not counted (their number
# is reported on stderr; --atomize turns them into SNPs). gt_match counts the true positives
# whose zygosity agrees: het when the split genotype has a 0 allele (0/1), hom otherwise (1/1).
#
# Output, one line per type (same format as shared/tools/eval_vcf.sh):
#   SNP tp=14 fp=0 fn=0 precision=1.0000 recall=1.0000 F1=1.0000 gt_match=14/14
#   INDEL tp=0 fp=2 fn=0 precision=0.0000 recall=0.0000 F1=0.0000 gt_match=0/0
# Needs bcftools, awk, sort, join, comm (bash + coreutils).
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=scripts/lib/vcf_keys.sh
source "$LIB_DIR/vcf_keys.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

JSON="" PASS_ONLY=0 ATOMIZE=0 CHECK_REF=e
pos=()
while (($#)); do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --json) (($# >= 2)) || die "--json needs a file name"; JSON="$2"; shift ;;
    --json=*) JSON="${1#--json=}" ;;
    --pass-only) PASS_ONLY=1 ;;
    --atomize) ATOMIZE=1 ;;
    --check-ref) (($# >= 2)) || die "--check-ref needs e|w|x|s"; CHECK_REF="$2"; shift ;;
    --check-ref=*) CHECK_REF="${1#--check-ref=}" ;;
    --) shift; pos+=("$@"); break ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) pos+=("$1") ;;
  esac
  shift
done
((${#pos[@]} >= 3 && ${#pos[@]} <= 4)) || { usage >&2; exit 2; }
REF="${pos[0]}" TRUTH="${pos[1]}" QUERY="${pos[2]}" REGIONS="${pos[3]:-}"
[[ $CHECK_REF =~ ^[ewxs]$ ]] || die "--check-ref must be e, w, x or s, got '$CHECK_REF'"
for f in "$REF" "$TRUTH" "$QUERY" ${REGIONS:+"$REGIONS"}; do
  [[ -r $f ]] || die "cannot read $f"
done
need_tools bcftools awk sort join comm

export LC_ALL=C  # sort, join and comm must agree on one collation
TMP="$(mktemp -d "${TMPDIR:-/tmp}/omicsd-eval-vcf.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

# prep NAME IN: $TMP/NAME.keys and $TMP/NAME.other (scripts/lib/vcf_keys.sh).
prep() {
  local name="$1" in="$2" pass=0 n_other
  [[ $name == query ]] && pass=$PASS_ONLY
  vcf_keys "$TMP/$name" "$in" "$REF" "$pass" "$ATOMIZE" "$CHECK_REF" "$REGIONS"
  n_other="$(cat "$TMP/$name.other")"
  if ((n_other > 0)); then
    log "$name: $n_other MNP/complex records (REF and ALT of equal length > 1) not counted (--atomize splits them)"
  fi
}

prep truth "$TRUTH"
prep query "$QUERY"

declare -A R
for kind in SNP INDEL; do
  awk -F'\t' -v k="$kind" '$3 == k' "$TMP/truth.keys" >"$TMP/T"
  awk -F'\t' -v k="$kind" '$3 == k' "$TMP/query.keys" >"$TMP/Q"
  cut -f1 "$TMP/T" >"$TMP/Ta"
  cut -f1 "$TMP/Q" >"$TMP/Qa"
  tp=$(comm -12 "$TMP/Ta" "$TMP/Qa" | wc -l)
  fp=$(comm -13 "$TMP/Ta" "$TMP/Qa" | wc -l)
  fn=$(comm -23 "$TMP/Ta" "$TMP/Qa" | wc -l)
  gt=$(join -t$'\t' "$TMP/T" "$TMP/Q" | awk -F'\t' '$2 == $4 && $2 != "."' | wc -l)
  R[$kind]="$(awk -v tp="$tp" -v fp="$fp" -v fn="$fn" -v gt="$gt" 'BEGIN {
    p = (tp + fp) ? tp / (tp + fp) : 0; r = (tp + fn) ? tp / (tp + fn) : 0
    f = (p + r) ? 2 * p * r / (p + r) : 0
    printf "%d %d %d %.4f %.4f %.4f %d", tp, fp, fn, p, r, f, gt }')"
  read -r tp fp fn p r f gt <<<"${R[$kind]}"
  printf '%s tp=%d fp=%d fn=%d precision=%s recall=%s F1=%s gt_match=%d/%d\n' \
    "$kind" "$tp" "$fp" "$fn" "$p" "$r" "$f" "$gt" "$tp"
done

if [[ -n $JSON ]]; then
  jstr() {  # a JSON string literal
    local s="$1"
    s="${s//\\/\\\\}"; s="${s//\"/\\\"}"; s="${s//$'\t'/\\t}"; s="${s//$'\n'/\\n}"
    printf '"%s"' "$s"
  }
  {
    printf '{\n  "ref": %s,\n  "truth": %s,\n  "query": %s,\n  "regions": %s,\n' \
      "$(jstr "$REF")" "$(jstr "$TRUTH")" "$(jstr "$QUERY")" "$(if [[ -n $REGIONS ]]; then jstr "$REGIONS"; else echo null; fi)"
    printf '  "pass_only": %s,\n  "atomize": %s,\n' \
      "$( ((PASS_ONLY)) && echo true || echo false)" "$( ((ATOMIZE)) && echo true || echo false)"
    sep=""
    for kind in SNP INDEL; do
      read -r tp fp fn p r f gt <<<"${R[$kind]}"
      printf '%s  "%s": {"tp": %d, "fp": %d, "fn": %d, "precision": %s, "recall": %s, "f1": %s, "gt_match": %d}' \
        "$sep" "$kind" "$tp" "$fp" "$fn" "$p" "$r" "$f" "$gt"
      sep=$',\n'
    done
    printf '\n}\n'
  } >"$JSON.tmp.$$"
  mv "$JSON.tmp.$$" "$JSON"
fi
