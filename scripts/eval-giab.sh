#!/usr/bin/env bash
# GIAB-style small-variant evaluation (a hap.py-like table) of a call set against a truth set.
#
# Usage: scripts/eval-giab.sh [options] REF.fa TRUTH.vcf.gz CONFIDENT.bed CALLS.vcf.gz
#   --against OTHER.vcf.gz  also score OTHER (a peer caller) and print its columns side by side
#   --window BED            add a scope over this BED (the whole truth window; no confident status
#                           there: a call outside the truth may still be real); default: no such scope
#   --names A[,B]           column labels (default: the file names without .vcf.gz)
#   --all-records           count records of any FILTER (default: PASS or '.' only, as hap.py does)
#   --tsv OUT               also write the rows as TSV: scope type subset caller tp fp fn
#                           precision recall f1 gt_match
#
# Rows, per scope (confident = inside CONFIDENT.bed; window = inside --window): SNP and INDEL, all,
# het and hom-alt, and indels by length |len(ALT) - len(REF)| in bins 1, 2-5, 6-15, >15. Columns:
# TP, FP, FN, precision, recall, F1 and genotype match (TPs whose zygosity agrees with the truth).
# Matching is scripts/eval-vcf.sh's (scripts/lib/vcf_keys.sh): both sides split and left-aligned with
# bcftools norm against REF.fa, matched on CHROM:POS:REF:ALT. Zygosity strata classify TP/FN by the
# truth genotype and FP by the call's, as hap.py does; precision is TP / (TP + FP).
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=scripts/lib/vcf_keys.sh
source "$LIB_DIR/vcf_keys.sh"

AGAINST="" WINDOW="" NAMES="" PASS_ONLY=1 TSV=""
pos=()
while (($#)); do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --against) (($# >= 2)) || die "--against needs a VCF"; AGAINST="$2"; shift ;;
    --window) (($# >= 2)) || die "--window needs a BED"; WINDOW="$2"; shift ;;
    --names) (($# >= 2)) || die "--names needs A[,B]"; NAMES="$2"; shift ;;
    --all-records) PASS_ONLY=0 ;;
    --tsv) (($# >= 2)) || die "--tsv needs a file name"; TSV="$2"; shift ;;
    --) shift; pos+=("$@"); break ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) pos+=("$1") ;;
  esac
  shift
done
((${#pos[@]} == 4)) || { usage >&2; exit 2; }
REF="${pos[0]}" TRUTH="${pos[1]}" CONFIDENT="${pos[2]}" CALLS="${pos[3]}"
for f in "$REF" "$TRUTH" "$CONFIDENT" "$CALLS" ${AGAINST:+"$AGAINST"} ${WINDOW:+"$WINDOW"}; do
  [[ -r $f ]] || die "cannot read $f"
done
need_tools bcftools awk sort

export LC_ALL=C
TMP="$(mktemp -d "${TMPDIR:-/tmp}/omicsd-eval-giab.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

label() { local b; b="$(basename "$1")"; b="${b%.gz}"; printf '%s\n' "${b%.vcf}"; }
files=("$CALLS") labels=()
[[ -n $AGAINST ]] && files+=("$AGAINST")
IFS=, read -r -a labels <<<"$NAMES"
for i in "${!files[@]}"; do
  [[ -n ${labels[i]:-} ]] || labels[i]="$(label "${files[i]}")"
  labels[i]="${labels[i]//[[:space:]]/_}"  # one word: the table and the TSV split on blanks
done
if [[ -n $AGAINST && ${labels[0]} == "${labels[1]}" ]]; then labels[1]="${labels[1]}-2"; fi
scopes=(confident) scope_bed=("$CONFIDENT")
[[ -n $WINDOW ]] && { scopes+=(window); scope_bed+=("$WINDOW"); }

# score SCOPE CALLER TRUTH_KEYS QUERY_KEYS: one TSV row per stratum.
score() {
  awk -F'\t' -v scope="$1" -v caller="$2" '
    function indel_len(key,   f) { split(key, f, ":"); return length(f[4]) - length(f[3]) }
    function in_row(r, type, zyg, key,   n) {
      if (type != row_type[r]) return 0
      if (row_sub[r] == "all") return 1
      if (row_sub[r] == "het" || row_sub[r] == "homalt") return zyg == (row_sub[r] == "het" ? "het" : "hom")
      n = indel_len(key); if (n < 0) n = -n
      return n >= row_lo[r] && n <= row_hi[r]
    }
    BEGIN {
      nr = split("SNP SNP SNP INDEL INDEL INDEL INDEL INDEL INDEL INDEL", row_type, " ")
      split("all het homalt all het homalt 1 2-5 6-15 >15", row_sub, " ")
      split("0 0 0 0 0 0 1 2 6 16", row_lo, " ")
      split("0 0 0 0 0 0 1 5 15 1000000000", row_hi, " ")
    }
    FNR == NR { tz[$1] = $2; tt[$1] = $3; next }
    { qz[$1] = $2; qt[$1] = $3 }
    END {
      for (r = 1; r <= nr; r++) {
        tp = fp = fn = gt = 0
        for (k in tz) if (in_row(r, tt[k], tz[k], k)) { if (k in qz) { tp++; gt += (qz[k] == tz[k]) } else fn++ }
        for (k in qz) if (!(k in tz) && in_row(r, qt[k], qz[k], k)) fp++
        p = tp + fp ? tp / (tp + fp) : 0; rc = tp + fn ? tp / (tp + fn) : 0
        f = p + rc ? 2 * p * rc / (p + rc) : 0
        printf "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%.4f\t%.4f\t%.4f\t%d\n", scope, row_type[r], row_sub[r], caller, tp, fp, fn, p, rc, f, gt
      }
    }' "$3" "$4"
}

: >"$TMP/rows.tsv"
for s in "${!scopes[@]}"; do
  vcf_keys "$TMP/truth.$s" "$TRUTH" "$REF" 0 0 e "${scope_bed[s]}"
  for i in "${!files[@]}"; do
    vcf_keys "$TMP/call.$s.$i" "${files[i]}" "$REF" "$PASS_ONLY" 0 e "${scope_bed[s]}"
    n_other="$(cat "$TMP/call.$s.$i.other")"
    ((n_other == 0)) || log "${labels[i]}: $n_other MNP records in ${scopes[s]} not counted"
    score "${scopes[s]}" "${labels[i]}" "$TMP/truth.$s.keys" "$TMP/call.$s.$i.keys" >>"$TMP/rows.tsv"
  done
done

# The table: one line per scope/type/subset, each caller's columns side by side.
awk -F'\t' -v n="${#files[@]}" -v names="${labels[*]}" '
  BEGIN { split(names, lab, " ") }
  {
    key = $1 "\t" $2 "\t" $3
    if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
    cell[key, $4] = sprintf("%4d %4d %4d %6.4f %6.4f %6.4f %4d/%-4d", $5, $6, $7, $8, $9, $10, $11, $5)
  }
  END {
    printf "%-22s", ""
    for (i = 1; i <= n; i++) printf " | %-50s", lab[i]
    printf "\n%-9s %-5s %-6s", "Scope", "Type", "Subset"
    for (i = 1; i <= n; i++) printf " | %-50s", sprintf("%4s %4s %4s %6s %6s %6s %-9s", "TP", "FP", "FN", "Prec", "Recall", "F1", "GT")
    printf "\n"
    for (o = 1; o <= nk; o++) {
      split(order[o], k, "\t")
      printf "%-9s %-5s %-6s", k[1], k[2], k[3]
      for (i = 1; i <= n; i++) printf " | %-50s", cell[order[o], lab[i]]
      printf "\n"
    }
  }' "$TMP/rows.tsv"
if [[ -n $TSV ]]; then
  { printf 'scope\ttype\tsubset\tcaller\ttp\tfp\tfn\tprecision\trecall\tf1\tgt_match\n'; cat "$TMP/rows.tsv"; } >"$TSV"
fi
