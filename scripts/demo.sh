#!/usr/bin/env bash
# Demo: install, build, simulate read pairs with known truth on the E. coli 536 genome
# (+ a repeat contig; scripts/make-sim-data.sh), align them with `omicsd align`, and print a
# short summary: reads, mapped %, properly paired %, reads/s, and the fraction of reads placed
# correctly vs the simulator truth (scripts/lib/eval_sim_sam.py). Takes a few minutes on 2 cores.
#
# Usage: scripts/demo.sh [N_PAIRS]          (default 100000; keep it <= 200000 on 2 cores)
#   THREADS          aligner threads (default nproc)
#   OMICSD_DATA_DIR  where the data set and the output go (default ~/.cache/omicsd):
#                    data in sim-N_PAIRS/, output BAM in demo/
#   OMICSD_BUILD_DIR, OMICSD_CUDA   as for scripts/build.sh
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }
N_PAIRS="${1:-100000}"
[[ $N_PAIRS =~ ^[1-9][0-9]*$ ]] || die "N_PAIRS must be a positive integer, got '$N_PAIRS'"

bash "$SCRIPTS_DIR/setup.sh"
BIN="$(bash "$SCRIPTS_DIR/build.sh" | tail -1)"
export OMICSD_BIN="${OMICSD_BIN:-$BIN}"
OMICSD="$(omicsd_bin)"
T="$(threads)"

DATA="$(data_dir)/sim-$N_PAIRS"
bash "$SCRIPTS_DIR/make-sim-data.sh" "$DATA" "$N_PAIRS"
REF="$DATA/ref.fa"
omicsd_index "$OMICSD" "$REF"

OUT="$(data_dir)/demo"
mkdir -p "$OUT"
BAM="$OUT/demo.bam"
rm -f "$BAM" "$BAM.bai"
log "omicsd align: $N_PAIRS read pairs, $T threads -> $BAM"
if ! timed "$OUT/align.time" "$OMICSD" align "$REF" "$DATA/reads_1.fq.gz" "$DATA/reads_2.fq.gz" \
    -o "$BAM" -t "$T" 2>"$OUT/align.log"; then
  tail -5 "$OUT/align.log" >&2
  die "omicsd align failed (log: $OUT/align.log)"
fi
[[ -s $BAM ]] || die "omicsd align exited 0 but wrote no $BAM"

samtools flagstat -O tsv "$BAM" >"$OUT/flagstat.tsv"
stat() { awk -F'\t' -v k="$1" '$3 == k { print $1; exit }' "$OUT/flagstat.tsv"; }
python3 "$LIB_DIR/eval_sim_sam.py" --json "$OUT/eval.json" "omicsd=$BAM" >"$OUT/eval.md"
WALL="$(wall_s "$OUT/align.time")"
READS="$(stat primary)"

python3 - "$OUT/eval.json" "$READS" "$WALL" "$(rss_mb "$OUT/align.time")" \
  "$(stat 'primary mapped %')" "$(stat 'properly paired %')" "$N_PAIRS" "$T" "$BAM" <<'EOF'
import json, sys
ev, reads, wall, rss, mapped, paired, pairs, threads, bam = sys.argv[1:]
r = json.load(open(ev))["omicsd"]
print(f"""
omicsd demo: {pairs} simulated read pairs (dwgsim, 150 bp) on E. coli 536 + repeats, {threads} threads
  reads                {int(reads)}
  mapped               {mapped}
  properly paired      {paired}
  speed                {int(reads) / float(wall):.0f} reads/s ({float(wall):.1f} s wall, peak RSS {rss} MB)
  placed correctly     {100 * r['correct_hq_frac']:.2f}% of all reads at MAPQ>={r['min_mapq']} (error rate {r['error_rate_hq']:.1e} among them); {100 * r['correct_any_frac']:.2f}% at any MAPQ
  output               {bam} (+ .bai)""")
EOF
echo "  accuracy details     $OUT/eval.md (MAPQ calibration; scripts/eval-align-sim.sh compares with bwa mem)"
