#!/usr/bin/env python3
"""Compare aligners per read against a baseline aligner (e.g. bwa mem) on the same reads.

Usage: compare_sam.py --baseline NAME=FILE [--min-mapq 30] [--tol 5] [--check NAME:PCT]
                      NAME=FILE [NAME=FILE ...]

FILEs are SAM/BAM/CRAM, read with `samtools view -F 0x900` (primary records only). Key =
read name (a trailing /1 or /2 is dropped) + read end (SAM flag 0x40 / 0x80). Among the reads
that the baseline maps with MAPQ >= --min-mapq, a tool agrees when it maps the read to the same
contig, on the same strand, with its unclipped leftmost position (POS minus the leading
soft/hard clip in the CIGAR) within --tol bp of the baseline's unclipped leftmost position.
Unmapped or missing reads disagree.

Prints a Markdown table: tool, reads, mapped %, baseline MAPQ>=N reads, agreeing, agreement %.
--check NAME:PCT exits 1 unless NAME's agreement is >= PCT percent. python3 stdlib only.
"""

import argparse
import re
import subprocess
import sys

CIGAR_RE = re.compile(r"(\d+)([MIDNSHP=X])")


def leading_clip(cigar):
    n = 0
    for length, op in CIGAR_RE.findall(cigar):
        if op in "SH":
            n += int(length)
        else:
            break
    return n


def load(path):
    """Return ({(name, end): (contig, reverse, unclipped_start, mapq) or None}, reads)."""
    recs = {}
    proc = subprocess.Popen(["samtools", "view", "-F", "0x900", path],
                            stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        t = line.split("\t", 11)
        if len(t) < 11:
            continue
        qname, flag = t[0], int(t[1])
        end = 2 if flag & 0x80 else 1
        if len(qname) > 2 and qname[-2] == "/" and qname[-1] in "12":
            if not flag & 0xC0:
                end = int(qname[-1])
            qname = qname[:-2]
        if flag & 0x4:
            recs[(qname, end)] = None
        else:
            recs[(qname, end)] = (t[2], bool(flag & 0x10),
                                  int(t[3]) - leading_clip(t[5]), int(t[4]))
    rc = proc.wait()
    if rc != 0:
        sys.exit(f"compare_sam.py: samtools view {path} failed (exit {rc})")
    if not recs:
        sys.exit(f"compare_sam.py: no primary records in {path}")
    return recs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, metavar="NAME=FILE")
    ap.add_argument("inputs", nargs="*", metavar="NAME=FILE")
    ap.add_argument("--min-mapq", type=int, default=30)
    ap.add_argument("--tol", type=int, default=5)
    ap.add_argument("--check", metavar="NAME:PCT")
    args = ap.parse_args()

    def split(item):
        name, sep, path = item.partition("=")
        return (name, path) if sep else (item, item)

    bname, bpath = split(args.baseline)
    base = load(bpath)
    confident = {k: v for k, v in base.items() if v is not None and v[3] >= args.min_mapq}
    if not confident:
        sys.exit(f"compare_sam.py: baseline {bname} has no reads with MAPQ >= {args.min_mapq}")

    rows = []
    results = {}
    for name, path in [(bname, bpath)] + [split(i) for i in args.inputs]:
        recs = base if name == bname and path == bpath else load(path)
        mapped = sum(1 for v in recs.values() if v is not None)
        agree = missing = 0
        for key, b in confident.items():
            if key not in recs:
                missing += 1
                continue
            r = recs[key]
            if r is not None and r[0] == b[0] and r[1] == b[1] and abs(r[2] - b[2]) <= args.tol:
                agree += 1
        pct = 100.0 * agree / len(confident)
        results[name] = pct
        rows.append((name, len(recs), 100.0 * mapped / len(recs), len(confident), agree, pct))
        if missing:
            print(f"compare_sam.py: WARNING {missing} of {bname}'s MAPQ>={args.min_mapq} reads "
                  f"are missing from {name}'s output (read names differ?)", file=sys.stderr)

    print(f"Per-read agreement with {bname} (primary records; among reads {bname} maps with "
          f"MAPQ >= {args.min_mapq}: same contig, same strand, unclipped start within "
          f"{args.tol} bp)\n")
    print(f"| tool | reads | mapped % | {bname} MAPQ>={args.min_mapq} | agree | agreement % |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, reads, mapped_pct, n, agree, pct in rows:
        print(f"| {name} | {reads} | {mapped_pct:.2f} | {n} | {agree} | {pct:.2f} |")

    if args.check:
        name, _, thr = args.check.rpartition(":")
        if name not in results:
            sys.exit(f"compare_sam.py: --check: no input named {name}")
        ok = results[name] >= float(thr)
        print(f"\ncheck: {name} agreement {results[name]:.2f}% >= {float(thr):g}%: "
              f"{'PASS' if ok else 'FAIL'}")
        if not ok:
            sys.exit(1)


if __name__ == "__main__":
    main()
