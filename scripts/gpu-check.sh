#!/usr/bin/env bash
# Build omicsd and its GPU tests here for sm_90 (H100/H200), then bundle them for a machine that has
# an NVIDIA driver but no build tools or packages: one folder holding the stripped binaries, every
# non-system shared library they load (htslib, libdeflate, spdlog, fmt, libstdc++, ...), the test data
# and a run.sh that sets LD_LIBRARY_PATH and runs the GPU-vs-CPU tests, compute-sanitizer on them
# when it is installed there, and the benchmark, writing results into $OUT when set.
#
# Usage: scripts/gpu-check.sh            build + bundle; prints the bundle's path on stdout
#   OMICSD_BUILD_DIR  build directory (default: build-gpu; a new one is configured Release, tests
#                     on, OMICSD_CUDA=ON, CMAKE_CUDA_ARCHITECTURES=$CUDA_ARCHS; an existing one is
#                     used as configured, and must be a CUDA build whose architectures include 90)
#   CUDA_ARCHS        CUDA architectures (default 90); set it to reconfigure an existing build dir
#   BUNDLE            bundle folder (default: <build dir>/gpu-bundle; inside the ignored build dir,
#                     so the device tool's `carry` can take it)
#   JOBS              build jobs (default: nproc)
#
# On the device machine (from the repository root, the bundle carried along):
#   <bundle>/run.sh   exit status 0 only when every GPU test ran (none skipped) and passed
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }
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
if [[ -d $DATA ]]; then
  cp -r "$DATA" "$BUNDLE/data/"
else
  log "warning: $DATA missing: the real-read and end-to-end tests will skip"
fi

cat >"$BUNDLE/run.sh" <<'RUN'
#!/usr/bin/env bash
# Runs the bundled GPU checks. Results (logs, gtest JSON, bench table and JSON) go to $OUT, else to
# results/ beside this script. Exit 0 only when every test ran on a GPU (none skipped) and passed,
# and compute-sanitizer (when installed) found no error.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RES="${OUT:-$HERE/results}"
mkdir -p "$RES"
export LD_LIBRARY_PATH="$HERE/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OMICSD_SHARED_DATA="$HERE/data"
rc=0
say() { printf '[gpu-check] %s\n' "$*" | tee -a "$RES/summary.txt"; }
: >"$RES/summary.txt"
{ nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; } >"$RES/gpu.txt" 2>&1 || true
say "gpu: $(head -1 "$RES/gpu.txt")"
"$HERE/bin/omicsd" --version >>"$RES/summary.txt" 2>&1 || { say "omicsd does not start"; rc=1; }
for t in test_device_info test_cuda_backends; do
  "$HERE/bin/$t" --gtest_output="json:$RES/$t.json" >"$RES/$t.log" 2>&1
  st=$?
  tail -n 30 "$RES/$t.log"
  if [[ $st != 0 ]]; then say "$t: FAILED (exit $st)"; rc=1; else say "$t: passed"; fi
  if grep -q 'GPU-vs-CPU test skipped' "$RES/$t.log"; then
    say "$t: GPU tests were SKIPPED: $(grep -m1 'GPU-vs-CPU test skipped' "$RES/$t.log")"
    rc=1
  fi
done
SAN="$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1 || true)"
if [[ -n $SAN ]]; then
  for tool in memcheck racecheck initcheck; do
    "$SAN" --tool "$tool" --error-exitcode 3 "$HERE/bin/test_cuda_backends" \
      --gtest_filter='CudaBackends.*:CudaBackendsRealReads.*' >"$RES/sanitizer-$tool.log" 2>&1
    st=$?
    if [[ $st != 0 ]]; then say "compute-sanitizer $tool: FAILED (exit $st)"; rc=1; else say "compute-sanitizer $tool: clean"; fi
  done
else
  say "compute-sanitizer: not installed on this machine, skipped"
fi
if "$HERE/bin/omicsd" bench --help >/dev/null 2>&1; then
  "$HERE/bin/omicsd" bench --json "$RES/bench.json" >"$RES/bench.txt" 2>&1 || { say "bench: FAILED"; rc=1; }
  cat "$RES/bench.txt"
else
  say "bench: this omicsd has no bench command, skipped"
fi
say "exit $rc"
exit $rc
RUN
chmod +x "$BUNDLE/run.sh"

size_kib=$(du -sk "$BUNDLE" | cut -f1)
log "bundle: $BUNDLE ($((size_kib / 1024)) MiB; $(find "$BUNDLE/lib" -type f | wc -l) libraries)"
((size_kib < 60 * 1024)) || die "bundle is $((size_kib / 1024)) MiB: over the 60 MiB the device tool carries"
echo "$BUNDLE"
