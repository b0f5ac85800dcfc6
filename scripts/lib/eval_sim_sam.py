#!/usr/bin/env python3
"""Score alignments of dwgsim reads against the truth encoded in the read names.

Usage: eval_sim_sam.py [--min-mapq 20] [--tol 5] [--json OUT.json] [--wrong-out OUT.tsv]
                       [--check-ge A B] NAME=ALIGNMENTS.{sam,bam,cram} [NAME=... ...]

Reads each file with `samtools view -F 0x900` (primary records only, one per read end) and
reports per tool: reads, mapped %, the fraction of ALL reads placed correctly at
MAPQ >= --min-mapq, the error rate among reads with MAPQ >= --min-mapq, and a MAPQ
calibration table (bins 0, 1-9, ..., 50-59, 60+: count, wrong, empirical error rate and its
Phred value). --check-ge A B exits 1 unless tool A's correct fraction at MAPQ >= min-mapq is
>= tool B's. python3 stdlib only; needs samtools on PATH.

dwgsim read names (dwgsim 0.1.x, Illumina mode), e.g.
    NC_008253.1_739904_740153_0_1_0_0_0:0:0_1:0:0_0   (FASTQ adds /1 or /2)
are `CONTIG_POS1_POS2_STR1_STR2_RAND1_RAND2_ERR1_ERR2_ID`, split on "_" from the right
(contig names may contain "_"):
    POS1, POS2  1-based leftmost reference position of read end 1 / read end 2, i.e. what SAM
                POS would be for an end-to-end alignment with no clipping (checked with bwa)
    STR1, STR2  0 = forward, 1 = reverse strand for end 1 / end 2
    RAND1/2     1 when the end is random sequence (no true origin; dwgsim -y), else 0
    ERR1/2      "E:S:I" = sequencing errors : SNPs : indels in that end
    ID          running read-pair number (hex)
Read end 1 = SAM flag 0x40 (or a /1 suffix), end 2 = 0x80 (or /2).

A read is correct when it is mapped to the true contig and its unclipped start
(POS minus the leading soft/hard clip) is within --tol bp of the true position. A mapped read
that is not correct is "wrong"; a mapped random read is always wrong, an unmapped read is
neither (it counts against the correct fraction, not the error rate).
"""

import argparse
import json
import math
import re
import subprocess
import sys

BINS = [(0, 0), (1, 9), (10, 19), (20, 29), (30, 39), (40, 49), (50, 59), (60, 255)]
CIGAR_RE = re.compile(r"(\d+)([MIDNSHP=X])")
ERR_RE = re.compile(r"^\d+:\d+:\d+$")


def parse_dwgsim_name(qname):
    """Return (contig, (pos1, pos2), (rev1, rev2), (rand1, rand2)) or None."""
    f = qname.split("_")
    if len(f) < 10 or not ERR_RE.match(f[-2]) or not ERR_RE.match(f[-3]):
        return None
    try:
        pos = (int(f[-9]), int(f[-8]))
        rev = (f[-7] == "1", f[-6] == "1")
        rnd = (f[-5] == "1", f[-4] == "1")
    except ValueError:
        return None
    return "_".join(f[:-9]), pos, rev, rnd


def leading_clip(cigar):
    n = 0
    for length, op in CIGAR_RE.findall(cigar):
        if op in "SH":
            n += int(length)
        else:
            break
    return n


def bin_index(mapq):
    for i, (lo, hi) in enumerate(BINS):
        if lo <= mapq <= hi:
            return i
    return len(BINS) - 1


def bin_label(i):
    lo, hi = BINS[i]
    if lo == hi:
        return str(lo)
    if hi >= 255:
        return f"{lo}+"
    return f"{lo}-{hi}"


def phred(wrong, count):
    if count == 0:
        return "-"
    if wrong == 0:
        return f">{10 * math.log10(count):.1f}"
    return f"{-10 * math.log10(wrong / count):.1f}"


def evaluate(path, min_mapq, tol, wrong_out=None, tool=""):
    bins = [[0, 0] for _ in BINS]  # count, wrong
    total = mapped = unparsed = random_reads = 0
    proc = subprocess.Popen(["samtools", "view", "-F", "0x900", path],
                            stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("@"):
            continue
        t = line.split("\t", 11)
        if len(t) < 11:
            continue
        qname, flag = t[0], int(t[1])
        end = 0
        if flag & 0x80:
            end = 1
        elif not flag & 0x40 and qname.endswith("/2"):
            end = 1
        if len(qname) > 2 and qname[-2] == "/" and qname[-1] in "12":
            qname = qname[:-2]
        total += 1
        truth = parse_dwgsim_name(qname)
        if truth is None:
            unparsed += 1
            continue
        contig, pos, rev, rnd = truth
        if rnd[end]:
            random_reads += 1
        if flag & 0x4:
            continue
        mapped += 1
        mapq = int(t[4])
        ustart = int(t[3]) - leading_clip(t[5])
        ok = (not rnd[end]) and t[2] == contig and abs(ustart - pos[end]) <= tol
        b = bins[bin_index(mapq)]
        b[0] += 1
        if not ok:
            b[1] += 1
            if wrong_out is not None:
                wrong_out.write(f"{tool}\t{qname}/{end + 1}\t{contig}:{pos[end]}:"
                                f"{'-' if rev[end] else '+'}\t{t[2]}:{ustart}:"
                                f"{'-' if flag & 0x10 else '+'}\t{mapq}\t{t[5]}\n")
    rc = proc.wait()
    if rc != 0:
        sys.exit(f"eval_sim_sam.py: samtools view {path} failed (exit {rc})")
    if total == 0:
        sys.exit(f"eval_sim_sam.py: no primary records in {path}")
    if unparsed:
        print(f"eval_sim_sam.py: WARNING {unparsed}/{total} read names in {path} are not "
              "dwgsim names; they count as not correct", file=sys.stderr)
    hi = [b for i, b in enumerate(bins) if BINS[i][0] >= min_mapq]
    hi_count = sum(b[0] for b in hi)
    hi_wrong = sum(b[1] for b in hi)
    all_wrong = sum(b[1] for b in bins)
    return {
        "reads": total,
        "mapped": mapped,
        "mapped_frac": mapped / total,
        "unparsed_names": unparsed,
        "random_reads": random_reads,
        "min_mapq": min_mapq,
        "tolerance_bp": tol,
        "hq_count": hi_count,
        "hq_wrong": hi_wrong,
        "correct_hq_frac": (hi_count - hi_wrong) / total,
        "error_rate_hq": hi_wrong / hi_count if hi_count else 0.0,
        "correct_any_frac": (mapped - all_wrong) / total,
        "calibration": [
            {"mapq": bin_label(i), "count": b[0], "wrong": b[1],
             "error_rate": b[1] / b[0] if b[0] else None}
            for i, b in enumerate(bins)
        ],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="+", metavar="NAME=FILE")
    ap.add_argument("--min-mapq", type=int, default=20)
    ap.add_argument("--tol", type=int, default=5)
    ap.add_argument("--json", help="write all metrics to this file")
    ap.add_argument("--wrong-out", help="write the wrong reads (TSV) to this file")
    ap.add_argument("--check-ge", nargs=2, metavar=("A", "B"),
                    help="exit 1 unless A's correct fraction at MAPQ >= min-mapq is >= B's")
    ap.add_argument("--no-calibration", action="store_true", help="summary table only")
    args = ap.parse_args()

    wrong_out = open(args.wrong_out, "w") if args.wrong_out else None
    results = {}
    for item in args.inputs:
        name, sep, path = item.partition("=")
        if not sep:
            name, path = item, item
        results[name] = evaluate(path, args.min_mapq, args.tol, wrong_out, name)
    if wrong_out:
        wrong_out.close()

    q = args.min_mapq
    print(f"Placement vs dwgsim truth (primary records; correct = true contig and unclipped "
          f"start within {args.tol} bp)\n")
    print(f"| tool | reads | mapped % | correct at MAPQ>={q} (% of all reads) | "
          f"error rate at MAPQ>={q} | correct at any MAPQ % |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['reads']} | {100 * r['mapped_frac']:.2f} | "
              f"{100 * r['correct_hq_frac']:.3f} | {r['error_rate_hq']:.2e} "
              f"({r['hq_wrong']}/{r['hq_count']}) | {100 * r['correct_any_frac']:.3f} |")
    if not args.no_calibration:
        for name, r in results.items():
            print(f"\nMAPQ calibration: {name}\n")
            print("| MAPQ | count | wrong | error rate | empirical Phred |")
            print("|---|---:|---:|---:|---:|")
            for c in r["calibration"]:
                er = "-" if c["error_rate"] is None else f"{c['error_rate']:.2e}"
                print(f"| {c['mapq']} | {c['count']} | {c['wrong']} | {er} | "
                      f"{phred(c['wrong'], c['count'])} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)

    if args.check_ge:
        a, b = args.check_ge
        for n in (a, b):
            if n not in results:
                sys.exit(f"eval_sim_sam.py: --check-ge: no input named {n}")
        fa, fb = results[a]["correct_hq_frac"], results[b]["correct_hq_frac"]
        verdict = "PASS" if fa >= fb else "FAIL"
        print(f"\ncheck: {a} correct at MAPQ>={q} {100 * fa:.3f}% >= {b} {100 * fb:.3f}%: "
              f"{verdict}")
        if fa < fb:
            sys.exit(1)


if __name__ == "__main__":
    main()
