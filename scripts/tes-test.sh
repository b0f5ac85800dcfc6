#!/usr/bin/env bash
# GA4GH TES acceptance with real clients on loopback (docs/api.md, "GA4GH TES"): py-tes against
# `omicsd serve` + `omicsd worker --task-runtime host` (tests/service/api/tes_pytes_test.py: inputs, executors,
# outputs, logs, EXECUTOR_ERROR, cancel, a worker killed with SIGKILL and retried, 400s, filters,
# paging), then Snakemake's TES executor running a three-rule workflow (tests/service/api/tes_snakemake_test.sh).
# The Python environments come from scripts/setup.sh (.venv/tes, and Snakemake's in tes_engine_venv, scripts/lib/common.sh; pinned in
# tests/service/api/requirements-tes*.txt). Exits non-zero when either fails.
#
# Usage: scripts/tes-test.sh        (OMICSD_BIN, or OMICSD_BUILD_DIR as for scripts/build.sh)
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }

BIN="${OMICSD_BIN:-$(build_dir)/service/omicsd}"
[[ -x $BIN ]] || die "no omicsd binary at $BIN (scripts/build.sh)"
for env in "$REPO_ROOT/.venv/tes" "$(tes_engine_venv)"; do
  [[ -x $env/bin/python ]] || die "$env missing: run scripts/setup.sh"
done
rc=0
log "py-tes acceptance"
"$REPO_ROOT/.venv/tes/bin/python" "$REPO_ROOT/tests/service/api/tes_pytes_test.py" --binary "$BIN" || rc=1
log "Snakemake TES executor workflow"
bash "$REPO_ROOT/tests/service/api/tes_snakemake_test.sh" "$BIN" "$(tes_work_dir)" "$(tes_engine_venv)" || rc=1
exit $rc
