#!/usr/bin/env python3
"""Build the simulation reference: the E. coli 536 genome plus a synthetic repeat contig.

Usage: make_repeats.py GENOME.fa[.gz] OUT.fa [--bed OUT.bed] [--seed N] [--segments N]

The repeat contig (named "repeats") holds copies of segments of the genome: --segments
segments of 300 bp to 3 kb (log-uniform), each copied 2-4 times with 0-2% random
substitutions, on a random strand, in shuffled order, joined by random spacers of
200-800 bp. With the defaults it is ~150 kb, so the reference is > 5 Mb and every
segment occurs 3-5 times (once in the genome, 2-4 times in "repeats"): reads there are
ambiguous or nearly so, which exercises MAPQ.

The genome contig is renamed to its accession (NC_008253.1). The output is deterministic
for a given seed (python3 stdlib `random`, no other dependency). --bed writes one line per
copy: repeats, start (0-based), end, source contig:start-end (0-based, half-open), strand,
number of substitutions.
"""

import argparse
import gzip
import math
import random
import sys

COMP = str.maketrans("ACGTacgtNn", "TGCAtgcaNn")


def read_fasta(path):
    opener = gzip.open if path.endswith(".gz") else open
    name, chunks = None, []
    with opener(path, "rt") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            if line.startswith(">"):
                if name is not None:
                    break  # first record only
                name = line[1:].split()[0]
            else:
                chunks.append(line.upper())
    if name is None:
        sys.exit(f"make_repeats.py: no FASTA record in {path}")
    # NCBI style "gi|110640213|ref|NC_008253.1|" -> "NC_008253.1"
    parts = [p for p in name.split("|") if p]
    if len(parts) >= 4 and parts[2] == "ref":
        name = parts[3]
    return name, "".join(chunks)


def mutate(seq, rate, rng):
    s = list(seq)
    n = 0
    for i, b in enumerate(s):
        if rng.random() < rate:
            s[i] = rng.choice([c for c in "ACGT" if c != b])
            n += 1
    return "".join(s), n


def write_fasta(fh, name, seq, width=60):
    fh.write(f">{name}\n")
    for i in range(0, len(seq), width):
        fh.write(seq[i:i + width] + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("genome")
    ap.add_argument("out")
    ap.add_argument("--bed")
    ap.add_argument("--seed", type=int, default=536)
    ap.add_argument("--segments", type=int, default=30)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    gname, genome = read_fasta(args.genome)
    copies = []  # (source_start, source_end, strand, seq, nsubs)
    for _ in range(args.segments):
        length = int(round(math.exp(rng.uniform(math.log(300), math.log(3000)))))
        start = rng.randrange(0, len(genome) - length)
        seg = genome[start:start + length]
        for _ in range(rng.randint(2, 4)):
            rate = rng.uniform(0.0, 0.02)
            cp, nsubs = mutate(seg, rate, rng)
            strand = "+"
            if rng.random() < 0.5:
                cp = cp.translate(COMP)[::-1]
                strand = "-"
            copies.append((start, start + length, strand, cp, nsubs))
    rng.shuffle(copies)

    parts, bed, pos = [], [], 0
    for (s, e, strand, cp, nsubs) in copies:
        spacer = "".join(rng.choice("ACGT") for _ in range(rng.randint(200, 800)))
        parts.append(spacer)
        pos += len(spacer)
        parts.append(cp)
        bed.append(f"repeats\t{pos}\t{pos + len(cp)}\t{gname}:{s}-{e}\t{strand}\t{nsubs}\n")
        pos += len(cp)
    tail = "".join(rng.choice("ACGT") for _ in range(rng.randint(200, 800)))
    parts.append(tail)
    repeats = "".join(parts)

    with open(args.out, "w") as fh:
        write_fasta(fh, gname, genome)
        write_fasta(fh, "repeats", repeats)
    if args.bed:
        with open(args.bed, "w") as fh:
            fh.writelines(bed)
    print(f"make_repeats.py: {gname} {len(genome)} bp + repeats {len(repeats)} bp "
          f"({len(copies)} copies of {args.segments} segments) -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
