#!/usr/bin/env bash
# Install every Debian 12 package that the build, the tests, the demo and the benchmarks need.
# Idempotent: when all packages are already installed it does nothing (no apt-get update).
# Runs apt-get as root, or through sudo when not root. The CUDA toolkit is optional and is
# not installed here: the script only reports whether nvcc was found.
#
# Usage: scripts/setup.sh
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }

PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config git
  # libraries
  libhts-dev libboost-dev libboost-system-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libcli11-dev libsqlite3-dev libpq-dev libgtest-dev libgmock-dev libbenchmark-dev
  libdeflate-dev zlib1g-dev libssl-dev
  # peers, simulators, data and tools for tests, demo and benchmarks
  samtools bcftools tabix bwa minimap2 freebayes dwgsim bowtie-examples vt-examples time python3
  # server for the PostgreSQL job-store tests (scripts/pg-test-server.sh runs private instances)
  postgresql
  # load generator for scripts/bench-service.sh; curl for the service integration tests
  wrk curl
  # throwaway certificates for the TLS tests; the system CA bundle for https:// clients
  openssl ca-certificates
  # headless browser for the HTML report test (tests/cli/qc_report_clients_test.py, Selenium)
  chromium chromium-driver
  # libFuzzer, AddressSanitizer and UBSan for scripts/fuzz.sh
  clang
  # Python environments of the GA4GH TES tests (below); rsync for Snakemake's fs storage plugin
  python3-venv rsync
)

# One dpkg-query for all packages (it exits 1 when some are unknown: that is expected).
declare -A installed=()
while read -r name status; do
  [[ $status == installed ]] && installed[$name]=1
done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)
missing=()
for p in "${PACKAGES[@]}"; do
  [[ -n ${installed[$p]:-} ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  log "all ${#PACKAGES[@]} packages already installed"
else
  log "installing ${#missing[@]} package(s): ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
  log "installed: ${missing[*]}"
fi

# Pinned Python tools of the TES tests (scripts/tes-test.sh), each in its own virtual environment,
# rebuilt only when its requirements file changes: py-tes under <repo>/.venv (git-ignored), Snakemake
# where the host task runtime's executors can see it (tes_engine_venv: not under /tmp).
install_venv "$REPO_ROOT/.venv/tes" tests/service/api/requirements-tes.txt
install_venv "$(tes_engine_venv)" tests/service/api/requirements-tes-engine.txt
# moto's S3 server for the S3 tests (scripts/s3-test-server.sh installs it too when missing).
install_venv "${OMICSD_S3_TEST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/omicsd/s3-test}" tests/service/objects/requirements-s3-test.txt

nvcc=""
if command -v nvcc >/dev/null 2>&1; then
  nvcc="$(command -v nvcc)"
elif [[ -x /usr/local/cuda/bin/nvcc ]]; then
  nvcc=/usr/local/cuda/bin/nvcc
fi
if [[ -n $nvcc ]]; then
  log "CUDA: nvcc found at $nvcc ($("$nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'))"
else
  log "CUDA: nvcc not found; the build will have the CPU backend only"
fi
