#!/usr/bin/env bash
# Demo: install, build, simulate read pairs with known truth on the E. coli 536 genome
# (+ a repeat contig; scripts/make-sim-data.sh, with SNPs and 1-30 bp indels), run the whole
# pipeline with `omicsd run` (align -> sorted BAM, call -> VCF, QC JSON), and print a short
# summary: reads, mapped %, properly paired %, depth, reads/s, the fraction of reads placed
# correctly vs the simulator truth, and SNP/indel precision/recall/F1 of the calls vs the planted
# variants (scripts/eval-vcf.sh). Takes a few minutes on 2 cores.
#
# Usage: scripts/demo.sh [N_PAIRS]          (default 300000 pairs, ~18x)
#   THREADS          aligner threads (default nproc)
#   OMICSD_DATA_DIR  where the data set and the output go (default ~/.cache/omicsd):
#                    data in sim-N_PAIRS/, output BAM in demo/
#   OMICSD_BUILD_DIR, OMICSD_CUDA   as for scripts/build.sh
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }
N_PAIRS="${1:-300000}"
[[ $N_PAIRS =~ ^[1-9][0-9]*$ ]] || die "N_PAIRS must be a positive integer, got '$N_PAIRS'"

bash "$SCRIPTS_DIR/setup.sh"
BIN="$(bash "$SCRIPTS_DIR/build.sh" | tail -1)"
export OMICSD_BIN="${OMICSD_BIN:-$BIN}"
OMICSD="$(omicsd_bin)"
T="$(threads)"

DATA="$(data_dir)/call-sim-$N_PAIRS"
make_call_sim_data "$DATA" "$N_PAIRS"
REF="$DATA/ref.fa"
omicsd_index "$OMICSD" "$REF"

OUT="$(data_dir)/demo"
mkdir -p "$OUT"
BAM="$OUT/demo.bam"
VCF="$OUT/demo.vcf.gz"
rm -f "$BAM" "$BAM.bai" "$VCF" "$VCF.tbi"
log "omicsd run: $N_PAIRS read pairs, $T threads -> $OUT/demo.{bam,vcf.gz,qc.json}"
if ! timed "$OUT/run.time" "$OMICSD" run "$REF" "$DATA/reads_1.fq.gz" "$DATA/reads_2.fq.gz" \
    -o "$OUT" --sample demo -t "$T"; then
  die "omicsd run failed"
fi
[[ -s $BAM && -s $VCF && -s $OUT/demo.qc.json ]] || die "omicsd run exited 0 but its outputs are missing"

samtools flagstat -O tsv "$BAM" >"$OUT/flagstat.tsv"
stat() { awk -F'\t' -v k="$1" '$3 == k { print $1; exit }' "$OUT/flagstat.tsv"; }
python3 "$LIB_DIR/eval_sim_sam.py" --json "$OUT/eval.json" "omicsd=$BAM" >"$OUT/eval.md"
WALL="$(wall_s "$OUT/run.time")"
bash "$SCRIPTS_DIR/eval-vcf.sh" "$REF" "$DATA/truth.mutations.vcf" "$VCF" >"$OUT/eval-vcf.txt"
READS="$(stat primary)"

python3 - "$OUT/eval.json" "$READS" "$WALL" "$(rss_mb "$OUT/run.time")" \
  "$(stat 'primary mapped %')" "$(stat 'properly paired %')" "$N_PAIRS" "$T" "$BAM" \
  "$OUT/demo.qc.json" "$OUT/eval-vcf.txt" "$VCF" <<'EOF'
import json, sys
ev, reads, wall, rss, mapped, paired, pairs, threads, bam, qc_path, vcf_eval, vcf = sys.argv[1:]
r = json.load(open(ev))["omicsd"]
qc = json.load(open(qc_path))
calls = {}
for line in open(vcf_eval):
    kind, *fields = line.split()
    calls[kind] = dict(f.split("=", 1) for f in fields)
print(f"""
omicsd demo: {pairs} simulated read pairs (dwgsim, 150 bp) on E. coli 536 + repeats, {threads} threads
  reads                {int(reads)}
  mapped               {mapped}
  properly paired      {paired}
  depth                mean {qc['depth']['mean']:.1f}x, {100 * qc['depth']['fraction_ge_10x']:.1f}% of bases >= 10x
  speed                {int(reads) / float(wall):.0f} reads/s end to end, align + call + QC ({float(wall):.1f} s wall, peak RSS {rss} MB)
  placed correctly     {100 * r['correct_hq_frac']:.2f}% of all reads at MAPQ>={r['min_mapq']} (error rate {r['error_rate_hq']:.1e} among them); {100 * r['correct_any_frac']:.2f}% at any MAPQ
  SNPs vs truth        precision {calls['SNP']['precision']}  recall {calls['SNP']['recall']}  F1 {calls['SNP']['F1']}
  indels vs truth      precision {calls['INDEL']['precision']}  recall {calls['INDEL']['recall']}  F1 {calls['INDEL']['F1']}
  Ti/Tv, het/hom       {qc['variants']['ti_tv']}, {qc['variants']['het_hom_ratio']}
  outputs              {bam} (+ .bai), {vcf} (+ .tbi), {qc_path}""")
EOF
echo "  accuracy details     $OUT/eval.md (MAPQ calibration; scripts/eval-align-sim.sh compares with bwa mem)"
