#!/usr/bin/env bash
# A throwaway S3-compatible server for the S3 tests: moto's standalone server (in memory, pinned in
# tests/service/objects/requirements-s3-test.txt, installed into a venv under ~/.cache/omicsd on first
# use) on a free loopback port. Prints its endpoint on stdout: http://127.0.0.1:PORT
# Any access key is accepted; clients still sign every request (SigV4), as against AWS.
#
# Usage: scripts/s3-test-server.sh start DIR [OWNER_PID]
#          OWNER_PID: stop the server by itself once that process is gone (a crashed test)
#        scripts/s3-test-server.sh stop DIR
#        scripts/s3-test-server.sh install   (only the venv; prints its directory)
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

[[ ${1:-} == -h || ${1:-} == --help || $# -lt 1 ]] && { usage; exit 0; }

VENV="${OMICSD_S3_TEST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/omicsd/s3-test}"
REQ="$REPO_ROOT/tests/service/objects/requirements-s3-test.txt"

case "$1" in
  install)
    install_venv "$VENV" "$REQ" || die "cannot install $REQ into $VENV"
    printf '%s\n' "$VENV"
    ;;
  start)
    [[ $# -ge 2 ]] || die "usage: $PROG start DIR [OWNER_PID]"
    dir="$2"
    owner="${3:-}"
    install_venv "$VENV" "$REQ" || die "cannot install $REQ into $VENV"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    started=""
    for _ in 1 2 3 4 5; do
      port="$(pick_port)"
      nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/server.log" 2>&1 </dev/null &
      pid=$!
      for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
          started=1
          break
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      [[ -n $started ]] && break
      kill "$pid" 2>/dev/null || true
    done
    [[ -n $started ]] || die "moto_server did not start: $(tail -5 "$dir/server.log" 2>/dev/null)"
    printf '%s\n' "$pid" >"$dir/pid"
    printf '%s\n' "$port" >"$dir/port"
    if [[ -n $owner ]]; then
      nohup bash -c '
        owner=$1 pid=$2 pidfile=$3
        while kill -0 "$owner" 2>/dev/null && [[ -f $pidfile ]]; do sleep 1; done
        kill "$pid" 2>/dev/null || true' watchdog "$owner" "$pid" "$dir/pid" >/dev/null 2>&1 </dev/null &
    fi
    printf 'http://127.0.0.1:%s\n' "$port"
    ;;
  stop)
    [[ $# -ge 2 ]] || die "usage: $PROG stop DIR"
    [[ -f $2/pid ]] || exit 0
    pid="$(cat "$2/pid")"
    rm -f "$2/pid"
    kill "$pid" 2>/dev/null || true
    ;;
  *)
    die "unknown command '$1' (expected start, stop or install)"
    ;;
esac
