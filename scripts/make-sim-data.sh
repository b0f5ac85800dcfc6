#!/usr/bin/env bash
# Make simulated paired-end data with known truth for the demo, accuracy evaluation and
# benchmarks.
#
# Usage: scripts/make-sim-data.sh OUTDIR [N_PAIRS]     (N_PAIRS default 500000)
#
# Reference: the E. coli 536 genome (NC_008253.1, 4.94 Mb, from the bowtie-examples package)
# plus a synthetic ~180 kb contig "repeats" made of 2-4 diverged copies (0-2% substitutions,
# either strand) of 30 genome segments of 300 bp - 3 kb (scripts/lib/make_repeats.py, fixed
# seed), so the reference is 5.12 Mb and has repeats. Reads: dwgsim, fixed seed, 150 bp pairs,
# outer distance 400 +- 50, 0.2% base errors per end, diploid mutations at rate 0.001 of which
# 15% indels (extension probability 0.3), no random reads, no Ns.
#
# Outputs in OUTDIR:
#   ref.fa, ref.fa.fai          the reference
#   ref.repeats.bed             where each copy in "repeats" came from
#   reads_1.fq.gz, reads_2.fq.gz
#   truth.mutations.txt         dwgsim's mutation list (contig, 1-based pos, ref, alt as IUPAC
#                               code for heterozygous SNPs, strand/haplotype 1|2|3)
#   truth.mutations.vcf         the same mutations as VCF (AF=0.5 het, 1.0 hom)
#   .stamp                      the parameters; a re-run with the same ones does nothing
#
# Truth of each read is in its name, CONTIG_POS1_POS2_STR1_STR2_RAND1_RAND2_ERR1_ERR2_ID
# (FASTQ adds /1 and /2): POS1/POS2 = 1-based leftmost reference position of end 1 / end 2
# (= SAM POS of an unclipped alignment), STR 0 = forward, 1 = reverse; contig names may
# contain "_" so parse from the right. See scripts/lib/eval_sim_sam.py.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }
(($# >= 1 && $# <= 2)) || { usage >&2; exit 2; }

OUT="$1"
N_PAIRS="${2:-500000}"
[[ $N_PAIRS =~ ^[1-9][0-9]*$ ]] || die "N_PAIRS must be a positive integer, got '$N_PAIRS'"

GENOME=/usr/share/doc/bowtie/examples/genomes/NC_008253.fna.gz
REPEAT_SEED=536
DWGSIM_SEED=20240611
# Mutation model (overridable for the variant-calling benchmark, which wants more and longer indels):
# SIM_MUT_RATE (-r), SIM_INDEL_FRACTION (-R), SIM_INDEL_EXTEND (-X: indel length is geometric with
# this extension probability, so 0.85 gives indels of 1 to ~30 bp).
DWGSIM_ARGS=(-z "$DWGSIM_SEED" -N "$N_PAIRS" -1 150 -2 150 -d 400 -s 50
             -e 0.002 -E 0.002 -r "${SIM_MUT_RATE:-0.001}" -R "${SIM_INDEL_FRACTION:-0.15}"
             -X "${SIM_INDEL_EXTEND:-0.3}" -y 0 -n 0 -o 1)

[[ -r $GENOME ]] || die "$GENOME not found: install bowtie-examples (scripts/setup.sh)"
need_tools dwgsim samtools python3 sha256sum

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
STAMP="$OUT/.stamp"
stamp_text="$(
  echo "genome $(sha256sum <"$GENOME" | cut -d' ' -f1)"
  echo "make_repeats.py $(sha256sum <"$LIB_DIR/make_repeats.py" | cut -d' ' -f1) --seed $REPEAT_SEED"
  echo "dwgsim $(dpkg-query -W -f='${Version}' dwgsim 2>/dev/null || echo unknown) ${DWGSIM_ARGS[*]}"
)"

outputs=(ref.fa ref.fa.fai ref.repeats.bed reads_1.fq.gz reads_2.fq.gz
         truth.mutations.txt truth.mutations.vcf)
have_all=1
for f in "${outputs[@]}"; do [[ -s $OUT/$f ]] || have_all=0; done
if ((have_all)) && [[ -f $STAMP && "$(cat "$STAMP")" == "$stamp_text" ]]; then
  log "up to date: $OUT ($N_PAIRS pairs)"
  exit 0
fi

TMP="$(mktemp -d "$OUT/.tmp.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
rm -f "$STAMP"

# Reference: only replace ref.fa when its content changes, so indexes built next to it
# (bwa, omicsd, minimap2) stay valid when only N_PAIRS changes.
python3 "$LIB_DIR/make_repeats.py" "$GENOME" "$TMP/ref.fa" --bed "$TMP/ref.repeats.bed" \
  --seed "$REPEAT_SEED"
if ! cmp -s "$TMP/ref.fa" "$OUT/ref.fa"; then
  mv "$TMP/ref.fa" "$OUT/ref.fa"
  rm -f "$OUT/ref.fa.fai"
fi
mv "$TMP/ref.repeats.bed" "$OUT/ref.repeats.bed"
[[ -s $OUT/ref.fa.fai && $OUT/ref.fa.fai -nt $OUT/ref.fa ]] || samtools faidx "$OUT/ref.fa"

log "dwgsim ${DWGSIM_ARGS[*]} ($N_PAIRS pairs)"
start=$SECONDS
dwgsim "${DWGSIM_ARGS[@]}" "$OUT/ref.fa" "$TMP/sim" >"$TMP/dwgsim.log" 2>&1 \
  || { tail -5 "$TMP/dwgsim.log" >&2; die "dwgsim failed"; }
for end in 1 2; do
  src="$TMP/sim.bwa.read$end.fastq"
  if [[ -f $src.gz ]]; then
    mv "$src.gz" "$OUT/reads_$end.fq.gz"
  elif [[ -f $src ]]; then  # older dwgsim writes plain FASTQ
    gzip -c "$src" >"$OUT/reads_$end.fq.gz"
  else
    die "dwgsim wrote no $src(.gz)"
  fi
done
mv "$TMP/sim.mutations.txt" "$OUT/truth.mutations.txt"
mv "$TMP/sim.mutations.vcf" "$OUT/truth.mutations.vcf"
printf '%s\n' "$stamp_text" >"$STAMP"
log "wrote $OUT: ref.fa ($(awk '{s += $2} END {print s}' "$OUT/ref.fa.fai") bp)," \
    "reads_{1,2}.fq.gz ($N_PAIRS pairs), truth.mutations.{txt,vcf} in $((SECONDS - start)) s"
