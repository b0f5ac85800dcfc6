#!/usr/bin/env bash
# Configure and build omicsd (Release, Ninja) and print the path of the binary on stdout
# (all build output goes to stderr).
#
# Usage: scripts/build.sh [extra cmake configure args...]
#   OMICSD_BUILD_DIR  build directory, relative to the repo root or absolute (default: build)
#   OMICSD_CUDA       AUTO (default: CUDA backends when nvcc is found), ON or OFF
#   JOBS              parallel build jobs (default: nproc)
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }
need_tools cmake ninja

BUILD="$(build_dir)"
log "configuring $BUILD (OMICSD_CUDA=${OMICSD_CUDA:-AUTO})"
gen=(-G Ninja)
[[ -f $BUILD/CMakeCache.txt ]] && gen=()  # keep the generator of an existing build dir
cmake -S "$REPO_ROOT" -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
  "-DOMICSD_CUDA=${OMICSD_CUDA:-AUTO}" "$@" >&2  # stdout carries only the binary path
log "building with ${JOBS:-$(nproc)} jobs"
cmake --build "$BUILD" -j "${JOBS:-$(nproc)}" >&2

BIN="$BUILD/service/omicsd"
[[ -x $BIN ]] || die "build finished but $BIN is missing"
log "built $("$BIN" --version 2>/dev/null | head -1 || echo omicsd)"
echo "$BIN"
