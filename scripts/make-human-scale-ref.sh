#!/usr/bin/env bash
# Build the human-scale test genome (issue 21) and put it at OUT.fa (with OUT.fa.fai and
# OUT.fa.segments.tsv, the origin of every piece): diverged copies (0.1% to 10% substitutions, small
# indels, shuffled segment order, either strand) of the real GRCh37 chr20 from Debian's vt-examples
# package, in 25 chromosome-sized sequences named like GRCh38's (chr1..chr22, chrX, chrY, chrM; chr20 is
# the real one, unchanged) plus scaffolds, alts, decoys, chrEBV and HLA alleles (chr1_KI270706v1_random,
# chrUn_KI270302v1, chr6_KI270758v1_alt, chrUn_JTFH01000001v1_decoy, HLA-A*01:01:01:01, ...).
#   full    ~3.1 Gb, ~3,050 sequences      quarter ~0.8 Gb, ~3,050 sequences
#   small   ~41 Mb, 336 sequences (CI; chr20 is the real chr20:9.65-10.45 Mb)
# Deterministic: the same bytes on every run and machine (fixed seeds, integer-only generator); the
# sha256 of each size is checked against scripts/lib/human-scale-ref.sha256. Built once into the cache
# ($OMICSD_DATA_DIR or ${XDG_CACHE_HOME:-~/.cache}/omicsd, under human-scale/) and hard-linked (or
# copied) to OUT.fa. Needs vt-examples (scripts/setup.sh) and a C++ compiler.
#
# Usage: scripts/make-human-scale-ref.sh [--size full|quarter|small] OUT.fa
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

# Bump when the generator's output changes (and update scripts/lib/human-scale-ref.sha256).
GENERATOR_VERSION=1
SOURCE_SHA256=83c80b3fb23822ff0a66f26306e46f5db3c83d48fcff68bcddc353a3d8ef581b

size=full out=""
while (($#)); do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --size) [[ $# -ge 2 ]] || die "--size needs a value (full, quarter or small)"; size="$2"; shift 2 ;;
    --size=*) size="${1#--size=}"; shift ;;
    -*) die "unknown option '$1' (see $PROG --help)" ;;
    *) [[ -z $out ]] || die "one OUT.fa expected, got '$out' and '$1'"; out="$1"; shift ;;
  esac
done
[[ -n $out ]] || die "missing OUT.fa (see $PROG --help)"
case $size in full | quarter | small) ;; *) die "unknown size '$size' (expected full, quarter or small)" ;; esac
need_tools sha256sum zcat c++

source_gz="${OMICSD_HUMAN_SCALE_SOURCE:-}"
if [[ -z $source_gz ]]; then
  source_gz="$(dpkg -L vt-examples 2>/dev/null | grep '/ref/20\.fa\.gz$' || true)"
fi
[[ -n $source_gz && -s $source_gz ]] \
  || die "GRCh37 chr20 (20.fa.gz of the vt-examples package) not found: run scripts/setup.sh"
[[ $(sha256sum "$source_gz" | cut -d' ' -f1) == "$SOURCE_SHA256" ]] \
  || die "$source_gz: unexpected sha256 (expected vt-examples 0.57721's 20.fa.gz)"

cache="$(data_dir)/human-scale"
genome_dir="$cache/v$GENERATOR_VERSION-$size"
genome="$genome_dir/genome.fa"
expected="$(awk -v k="v$GENERATOR_VERSION-$size" '$2 == k { print $1 }' "$LIB_DIR/human-scale-ref.sha256")"

if [[ ! -s $genome.sha256 || ! -s $genome.segments.tsv || ! -s $genome.fai ]]; then
  mkdir -p "$cache/tools" "$genome_dir"
  tool_src="$LIB_DIR/human_scale_ref.cpp"
  tool="$cache/tools/human_scale_ref-$(sha256sum "$tool_src" | cut -c1-16)"
  if [[ ! -x $tool ]]; then
    log "compiling $tool_src"
    c++ -O2 -std=c++20 -o "$tool.tmp.$$" "$tool_src" && mv "$tool.tmp.$$" "$tool"
  fi
  tmp="$genome_dir/tmp.$$"
  mkdir -p "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  log "writing the $size genome into $genome_dir"
  zcat "$source_gz" >"$tmp/source.fa"
  "$tool" "$tmp/source.fa" "$size" "$tmp/genome.fa"
  rm -f "$tmp/source.fa"
  sha="$(sha256sum "$tmp/genome.fa" | cut -d' ' -f1)"
  if [[ -n $expected && $sha != "$expected" ]]; then
    die "the $size genome's sha256 is $sha, expected $expected: the generator is not deterministic here"
  fi
  mv "$tmp/genome.fa.fai" "$genome.fai"
  mv "$tmp/genome.fa.segments.tsv" "$genome.segments.tsv"
  mv "$tmp/genome.fa" "$genome"
  printf '%s  v%s-%s\n' "$sha" "$GENERATOR_VERSION" "$size" >"$genome.sha256"
else
  sha="$(cut -d' ' -f1 "$genome.sha256")"
  [[ -z $expected || $sha == "$expected" ]] || die "$genome.sha256 is $sha, expected $expected: remove $genome_dir"
fi

mkdir -p "$(dirname "$out")"
for suffix in "" .fai .segments.tsv; do
  rm -f "$out$suffix"
  ln "$genome$suffix" "$out$suffix" 2>/dev/null || cp "$genome$suffix" "$out$suffix"
done
# The .fai above was written with the genome; an index older than its FASTA would make htslib rebuild it.
touch "$out.fai"
log "$out: $(wc -l <"$out.fai") sequences, $(awk '{ s += $2 } END { printf "%.0f", s }' "$out.fai") bases, sha256 $sha"
