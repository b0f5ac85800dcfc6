# shellcheck shell=bash
# The variant normalisation every VCF evaluation shares (scripts/eval-vcf.sh, scripts/eval-giab.sh):
# one matcher, written once. Sourced after scripts/lib/common.sh.
#
# vcf_keys OUT_PREFIX IN.vcf[.gz] REF.fa PASS_ONLY(0|1) ATOMIZE(0|1) CHECK_REF(e|w|x|s) [REGIONS]
#   Writes OUT_PREFIX.keys (KEY \t ZYGOSITY \t TYPE, sorted and unique by KEY, KEY =
#   CHROM:POS:REF:ALT) and OUT_PREFIX.other (the number of records of no counted type).
#   The first sample only (`bcftools query -l`); multiallelics split and indels left-aligned against
#   REF.fa (bcftools norm -m- -f REF.fa); records whose genotype carries a non-reference allele
#   (GT="alt"); '*', '.' and symbolic (<...>) alleles dropped. A sites-only VCF counts every record,
#   zygosity from INFO/AF (>= 0.99 hom, else het; '.' without AF). TYPE: SNP (REF and ALT one base
#   each) or INDEL (lengths differ); same-length substitutions (MNPs) are counted in .other only.
#   PASS_ONLY=1 keeps records whose FILTER is PASS or '.'. ATOMIZE=1 splits MNPs/complex alleles
#   (bcftools norm -a). REGIONS: a BED (.bed/.bed.gz) or bcftools targets file, applied after
#   normalisation (bcftools view -T). Needs bcftools, awk, sort; LC_ALL=C is set for the sort.
vcf_keys() {
  local out="$1" in="$2" ref="$3" pass_only="$4" atomize="$5" check_ref="$6" regions="${7:-}"
  local sample view=() norm=() tgt=() fmt
  sample="$(bcftools query -l "$in" 2>"$out.err" | head -n 1)" \
    || die "bcftools cannot read $in: $(head -n 3 "$out.err")"
  if [[ -n $sample ]]; then
    view=(-s "$sample")
    fmt='%CHROM\t%POS\t%REF\t%ALT[\t%GT]\n'
  elif bcftools view -h "$in" | grep -q '^##INFO=<ID=AF,'; then
    fmt='%CHROM\t%POS\t%REF\t%ALT\tAF=%INFO/AF\n'
  else
    fmt='%CHROM\t%POS\t%REF\t%ALT\tAF=.\n'
  fi
  ((pass_only)) && view+=(-f 'PASS,.')
  ((atomize)) && norm+=(-a)
  if [[ -n $regions ]]; then tgt=(-T "$regions"); fi
  local gtsel=(cat)
  [[ -n $sample ]] && gtsel=(bcftools view -i 'GT="alt"')
  if ! {
    bcftools view "${view[@]}" -Ou "$in" |
      bcftools norm "${norm[@]}" -m- -c "$check_ref" -f "$ref" -Ou |
      bcftools view "${tgt[@]}" -Ou |
      "${gtsel[@]}" |
      bcftools query -f "$fmt"
  } 2>"$out.err" >"$out.raw"; then
    grep -v '^Lines   total/split' "$out.err" | head -n 5 >&2 || true
    die "could not normalise $in against $ref (see the bcftools messages above)"
  fi
  awk -F'\t' -v other="$out.other" '
    BEGIN { n_other = 0 }
    {
      alt = $4
      if (alt == "*" || alt == "." || substr(alt, 1, 1) == "<") next
      if (substr($5, 1, 3) == "AF=") {           # sites-only
        af = substr($5, 4)
        z = (af == "." || af == "") ? "." : ((af + 0 >= 0.99) ? "hom" : "het")
      } else {
        z = ($5 ~ /(^|[\/|])0([\/|]|$)/) ? "het" : "hom"
      }
      lr = length($3); la = length(alt)
      if (lr == 1 && la == 1) t = "SNP"
      else if (lr != la) t = "INDEL"
      else { n_other++; next }
      print $1 ":" $2 ":" $3 ":" alt "\t" z "\t" t
    }
    END { print n_other > other }' "$out.raw" | LC_ALL=C sort -t$'\t' -u -k1,1 >"$out.keys"
}
