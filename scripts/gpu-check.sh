#!/usr/bin/env bash
# Build omicsd and its GPU tests here for sm_90 (H100/H200), then bundle them for a machine that has
# an NVIDIA driver but no build tools or packages: one folder holding the stripped binaries, every
# non-system shared library they load (htslib, libdeflate, spdlog, fmt, libstdc++, ...), the test data
# and a run.sh that sets LD_LIBRARY_PATH and runs, each under timeout, device info, the GPU-vs-CPU
# tests, the benchmark, compute-sanitizer memcheck and initcheck (when installed there) and an
# end-to-end comparison with bwa and minimap2, writing results into $OUT when set (at most 3 files).
#
# Usage: scripts/gpu-check.sh            build + bundle; prints the bundle's path on stdout
#   OMICSD_BUILD_DIR  build directory (default: build-gpu; a new one is configured Release, tests
#                     on, OMICSD_CUDA=ON, CMAKE_CUDA_ARCHITECTURES=$CUDA_ARCHS; an existing one is
#                     used as configured, and must be a CUDA build whose architectures include 90)
#   CUDA_ARCHS        CUDA architectures (default 90); set it to reconfigure an existing build dir
#   BUNDLE            bundle folder (default: <build dir>/gpu-bundle; inside the ignored build dir,
#                     so the device tool's `carry` can take it)
#   JOBS              build jobs (default: nproc)
#   GPU_CHECK_PEERS   0: leave out bwa, minimap2, dwgsim and the E. coli genome (run.sh's end-to-end step)
#
# On the device machine (from the repository root, the bundle carried along):
#   <bundle>/run.sh   exit status 0 only when every step passed (or there is no GPU: steps skipped);
#                     THREADS (default nproc) for the CPU sides, E2E_PAIRS (default 400000),
#                     GPU_CHECK_STEPS (default tests,bench,sanitizer,e2e: a subset reruns part)
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }
need_tools cmake ninja ldd strip

BUILD="${OMICSD_BUILD_DIR:-build-gpu}"
[[ $BUILD == /* ]] || BUILD="$REPO_ROOT/$BUILD"
BUNDLE="${BUNDLE:-$BUILD/gpu-bundle}"
DATA="$REPO_ROOT/../shared/data/na12878-chr22-tiny"
TESTS=(test_cuda_backends test_device_info)

if [[ ! -f $BUILD/CMakeCache.txt || -n ${CUDA_ARCHS:-} ]]; then
  gen=(-G Ninja)
  [[ -f $BUILD/CMakeCache.txt ]] && gen=()
  log "configuring $BUILD"
  # OMICSD_CUDA=ON: configuring fails here without nvcc.
  cmake -S "$REPO_ROOT" -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DOMICSD_CUDA=ON \
    -DOMICSD_BUILD_TESTS=ON "-DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHS:-90}" >&2
fi
grep -q '^OMICSD_CUDA:STRING=OFF' "$BUILD/CMakeCache.txt" && die "$BUILD is configured with OMICSD_CUDA=OFF"
[[ -d $BUILD/cuda/CMakeFiles/omicsd_cuda.dir ]] || die "$BUILD does not build the CUDA backends (no nvcc?)"
log "building omicsd ${TESTS[*]} with ${JOBS:-$(nproc)} jobs"
cmake --build "$BUILD" -j "${JOBS:-$(nproc)}" --target omicsd "${TESTS[@]}" >&2

log "bundling into $BUNDLE"
rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/bin" "$BUNDLE/lib" "$BUNDLE/data"
cp "$BUILD/service/omicsd" "$BUNDLE/bin/"
for t in "${TESTS[@]}"; do cp "$BUILD/tests/$t" "$BUNDLE/bin/"; done
# Libraries the GPU machine's own system provides (glibc and the driver), or must provide (libcuda):
# everything else is bundled, so the bundle does not depend on that machine's distribution.
system_lib='^(linux-vdso|ld-linux|libc|libm|libdl|libpthread|librt|libresolv|libutil|libcuda|libnvidia)[.-]'
for f in "$BUNDLE"/bin/*; do
  ldd "$f" | awk '/=> \//{print $1, $3}' | while read -r name path; do
    [[ $name =~ $system_lib ]] && continue
    [[ -f $BUNDLE/lib/$name ]] || cp -L "$path" "$BUNDLE/lib/$name"
  done
done
strip --strip-unneeded "$BUNDLE"/bin/* "$BUNDLE"/lib/* 2>/dev/null || true
# The peers for the end-to-end comparison (run.sh step 5): bwa, minimap2 and dwgsim need only libc, libm
# and zlib; the reference is the demo's E. coli (the reads are simulated there, not carried).
if [[ -n ${GPU_CHECK_PEERS:-1} && ${GPU_CHECK_PEERS:-1} != 0 ]]; then
  mkdir -p "$BUNDLE/peers"
  for tool in bwa minimap2 dwgsim; do
    p="$(command -v "$tool" || true)"
    [[ -n $p ]] && cp -L "$p" "$BUNDLE/peers/"
  done
  genome=/usr/share/doc/bowtie/examples/genomes/NC_008253.fna.gz
  [[ -f $genome ]] && cp "$genome" "$BUNDLE/peers/ref.fa.gz"
fi
if [[ -d $DATA ]]; then
  cp -r "$DATA" "$BUNDLE/data/"
else
  log "warning: $DATA missing: the real-read and end-to-end tests will skip"
fi

cat >"$BUNDLE/run.sh" <<'RUN'
#!/usr/bin/env bash
# Runs the bundled GPU checks, in this order, each under `timeout`: device info, the GPU tests
# (test_device_info, test_cuda_backends: GPU vs CPU bit for bit, the sticky-fault fallback),
# `omicsd bench` (GPU and CPU side by side, nvidia-smi clocks sampled meanwhile), compute-sanitizer
# memcheck (leak check on) and initcheck, then, when the bundle carries the peers, `omicsd align` end
# to end on simulated reads with --backend cuda and cpu vs bwa mem and minimap2 -ax sr (same threads).
# Results go to $OUT (else results/ beside this script): summary.txt, bench.json and results.tar.gz
# holding every log. Exit 0 when every step passed, or when there is no GPU here (every GPU step is
# then reported as skipped); non-zero when a step failed, timed out or a GPU test skipped on a GPU.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RES="${OUT:-$HERE/results}"
WORK="$(mktemp -d)"
mkdir -p "$RES"
export LD_LIBRARY_PATH="$HERE/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OMICSD_SHARED_DATA="$HERE/data" OMICSD_BIN="$HERE/bin/omicsd"
THREADS="${THREADS:-$(nproc)}"
STEPS=",${GPU_CHECK_STEPS:-tests,bench,sanitizer,e2e},"  # which of steps 2-5 to run
want() { [[ $STEPS == *",$1,"* ]]; }
rc=0
# The summary and the tarball are refreshed after every step, so a run cut short still leaves them.
say() { printf '[gpu-check] %s\n' "$*" | tee -a "$WORK/summary.txt"; cp "$WORK/summary.txt" "$RES/summary.txt"; }
save() { tar -C "$WORK" -czf "$RES/results.tar.gz" . 2>/dev/null; [[ -f $WORK/bench.json ]] && cp "$WORK/bench.json" "$RES/"; }
step() {  # step NAME SECONDS CMD...: runs CMD under timeout with its output in $WORK/NAME.log
  local name=$1 secs=$2 t0=$SECONDS st
  shift 2
  timeout --kill-after=10 "$secs" "$@" >"$WORK/$name.log" 2>&1
  st=$?
  if ((st == 124 || st == 137)); then say "$name: TIMED OUT after ${secs} s"; rc=1
  elif ((st != 0)); then say "$name: FAILED (exit $st, $((SECONDS - t0)) s)"; rc=1
  else say "$name: passed ($((SECONDS - t0)) s)"; fi
  save
  return $st
}
finish() {
  say "exit $rc"
  cp "$WORK/summary.txt" "$RES/summary.txt"
  [[ -f $WORK/bench.json ]] && cp "$WORK/bench.json" "$RES/bench.json"
  tar -C "$WORK" -czf "$RES/results.tar.gz" . 2>/dev/null
  rm -rf "$WORK"
  exit $rc
}
: >"$WORK/summary.txt"

# 1. Device info.
if ! nvidia-smi -L >"$WORK/gpu.txt" 2>&1; then
  say "no GPU here ($(head -1 "$WORK/gpu.txt")): every GPU step skipped"
  "$HERE/bin/omicsd" --version >>"$WORK/summary.txt" 2>&1 || { say "omicsd does not start"; rc=1; }
  "$HERE/bin/test_cuda_backends" --gtest_filter='CudaBackendSelection.*' >"$WORK/selection.log" 2>&1 \
    && say "backend selection test: passed (no GPU)" || { say "backend selection test: FAILED"; rc=1; }
  finish
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit \
  --format=csv >>"$WORK/gpu.txt" 2>&1
say "gpu: $(sed -n 1p "$WORK/gpu.txt")"
say "omicsd: $("$HERE/bin/omicsd" --version 2>&1 | head -1)"

# 2. The GPU tests (every one must run: a skip on a GPU machine is a failure).
want tests && for t in test_device_info test_cuda_backends; do
  step "$t" 150 "$HERE/bin/$t" --gtest_output="json:$WORK/$t.json"
  grep -E '^\[ +(OK|FAILED) +\]|\[ info \]' "$WORK/$t.log" | sed 's/^/    /' | tee -a "$WORK/summary.txt" >/dev/null
  if grep -q 'GPU-vs-CPU test skipped' "$WORK/$t.log"; then say "$t: GPU tests were SKIPPED"; rc=1; fi
done

# 3. The benchmark, GPU and CPU side by side, with the clocks sampled every 200 ms.
if want bench; then
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,utilization.gpu,temperature.gpu \
  --format=csv -lms 200 >"$WORK/clocks.csv" 2>&1 &
smi=$!
step bench 180 "$HERE/bin/omicsd" bench --threads "$THREADS" --json "$WORK/bench.json"
kill "$smi" 2>/dev/null
sed 's/^/    /' "$WORK/bench.log" | grep -v '\] \[info\]' >>"$WORK/summary.txt"
say "sm clock during bench (MHz): $(awk -F', ' 'NR>1 && $2+0>0 {n++; s+=$2; if(min==""||$2<min)min=$2; if($2>max)max=$2} END {if(n) printf "min %d mean %.0f max %d over %d samples", min, s/n, max, n}' "$WORK/clocks.csv")"
fi

# 4. compute-sanitizer on the GPU tests' random batches (not the fault test: its error is deliberate).
SAN="$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1 || true)"
FILTER='CudaBackends.AlignRandomBatchesMatchCpu:CudaBackends.AlignEveryWarpShapeMatchesCpu:CudaBackends.PairHmmRandomBatchesMatchCpu:CudaBackends.AlignCigarLongerThanItsSlotIsRecomputedIdentically'
if ! want sanitizer; then
  :
elif [[ -n $SAN ]]; then
  step sanitizer-memcheck 100 "$SAN" --tool memcheck --leak-check full --error-exitcode 3 \
    "$HERE/bin/test_cuda_backends" --gtest_filter="$FILTER"
  step sanitizer-initcheck 100 "$SAN" --tool initcheck --error-exitcode 3 \
    "$HERE/bin/test_cuda_backends" --gtest_filter="$FILTER"
  grep -h 'ERROR SUMMARY' "$WORK"/sanitizer-*.log | sed 's/^/    /' >>"$WORK/summary.txt"
else
  say "compute-sanitizer: not installed on this machine, skipped"
fi

# 5. End to end on simulated reads, when the bundle carries the peers (scripts/gpu-check.sh --peers).
if want e2e && [[ -x $HERE/peers/dwgsim && -f $HERE/peers/ref.fa.gz ]]; then
  e2e() {
    set -e
    cd "$WORK"
    gzip -dc "$HERE/peers/ref.fa.gz" >ref.fa
    "$HERE/peers/dwgsim" -z 20240611 -N "${E2E_PAIRS:-400000}" -1 150 -2 150 -d 400 -s 50 -e 0.002 -E 0.002 \
      -r 0.001 -R 0.15 -X 0.3 -y 0 -n 0 -o 1 ref.fa sim >/dev/null 2>&1
    ls sim.bwa.read1.fastq* sim.bwa.read2.fastq* >/dev/null
    r1=$(ls sim.bwa.read1.fastq*) r2=$(ls sim.bwa.read2.fastq*)
    "$HERE/bin/omicsd" index ref.fa >/dev/null 2>&1
    "$HERE/peers/bwa" index ref.fa >/dev/null 2>&1
    tm() { local t0 t1; t0=$(date +%s%N); "$@"; t1=$(date +%s%N); awk -v d=$((t1 - t0)) 'BEGIN {printf "%.2f", d / 1e9}'; }
    echo "pairs ${E2E_PAIRS:-400000}, threads $THREADS"
    set +e
    for b in cuda cpu; do
      s=$(tm "$HERE/bin/omicsd" align ref.fa "$r1" "$r2" -o "omicsd-$b.bam" -t "$THREADS" --backend "$b" 2>"omicsd-$b.log")
      echo "omicsd align --backend $b: $s s"
    done
    # The whole pipeline (align + call + QC), GPU vs CPU: wall time, identical VCF records.
    for b in cuda cpu; do
      s=$(tm "$HERE/bin/omicsd" run ref.fa "$r1" "$r2" -o "run-$b" --sample sim -t "$THREADS" --backend "$b" 2>"run-$b.log")
      echo "omicsd run --backend $b: $s s"
    done
    if [[ ! -s run-cuda/sim.vcf.gz || ! -s run-cpu/sim.vcf.gz ]]; then
      echo "VCF cuda vs cpu: a run wrote no VCF (see run-*.log)"
    elif cmp -s <(gzip -dc run-cuda/sim.vcf.gz | grep -v '^##commandline\|^##fileDate') <(gzip -dc run-cpu/sim.vcf.gz | grep -v '^##commandline\|^##fileDate'); then
      echo "VCF cuda vs cpu: identical ($(gzip -dc run-cpu/sim.vcf.gz | grep -vc '^#') records)"
    else
      echo "VCF cuda vs cpu: DIFFER"
    fi
    # The alignment records (everything after the header, whose @PG line names the backend) must match.
    python3 - omicsd-cuda.bam omicsd-cpu.bam <<'PY' || echo "BAM records: could not compare (python3?)"
import gzip, hashlib, struct, sys
def records(path):
    d = gzip.open(path).read()
    l_text = struct.unpack_from("<i", d, 4)[0]
    p = 8 + l_text
    n_ref = struct.unpack_from("<i", d, p)[0]
    p += 4
    for _ in range(n_ref):
        p += 4 + struct.unpack_from("<i", d, p)[0] + 4
    return hashlib.sha256(d[p:]).hexdigest(), len(d) - p
a, b = records(sys.argv[1]), records(sys.argv[2])
print("BAM records cuda vs cpu:", "identical" if a[0] == b[0] else "DIFFER", a[0][:16], b[0][:16])
PY
    s=$(tm sh -c "'$HERE/peers/bwa' mem -t $THREADS ref.fa $r1 $r2 >bwa.sam 2>bwa.log"); echo "bwa mem -t $THREADS: $s s"
    s=$(tm sh -c "'$HERE/peers/minimap2' -ax sr -t $THREADS ref.fa $r1 $r2 >mm2.sam 2>mm2.log"); echo "minimap2 -ax sr -t $THREADS: $s s"
    grep -h 'reads, ' omicsd-*.log | sed 's/^.*\] //'
    rm -rf sim.bwa.* sim.mutations.* bwa.sam mm2.sam ./*.bam ./*.bai ref.fa* run-cuda run-cpu
  }
  step e2e 150 bash -c "$(declare -f e2e); HERE='$HERE' WORK='$WORK' THREADS='$THREADS' E2E_PAIRS='${E2E_PAIRS:-}' e2e"
  sed 's/^/    /' "$WORK/e2e.log" >>"$WORK/summary.txt"
fi
finish
RUN
chmod +x "$BUNDLE/run.sh"

size_kib=$(du -sk "$BUNDLE" | cut -f1)
log "bundle: $BUNDLE ($((size_kib / 1024)) MiB; $(find "$BUNDLE/lib" -type f | wc -l) libraries)"
((size_kib < 60 * 1024)) || die "bundle is $((size_kib / 1024)) MiB: over the 60 MiB the device tool carries"
echo "$BUNDLE"
