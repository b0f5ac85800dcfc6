#!/usr/bin/env bash
# A throwaway PostgreSQL server for the PostgreSQL job-store tests: initdb into DIR (trust auth,
# listening on 127.0.0.1 only, on a free port; sockets in DIR, not /var/run), start it, create the
# database omicsd_test and print its URL on stdout:
#   postgres://postgres@127.0.0.1:PORT/omicsd_test
# PostgreSQL refuses to run as root: as root the server runs as the `postgres` user (DIR is handed
# to it). Not for production data: fsync is off unless OMICSD_PG_FSYNC=on.
#
# Usage: scripts/pg-test-server.sh start DIR [OWNER_PID]
#          OWNER_PID: stop the server by itself once that process is gone (a crashed test)
#        scripts/pg-test-server.sh stop DIR
#        scripts/pg-test-server.sh bindir    (prints the server's bin directory, or fails)
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

[[ ${1:-} == -h || ${1:-} == --help || $# -lt 1 ]] && { usage; exit 0; }

# initdb and pg_ctl: on PATH, else the newest /usr/lib/postgresql/*/bin (Debian keeps them there).
pg_bindir() {
  local d
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    d="$(dirname "$(readlink -f "$(command -v pg_ctl)")")"
    [[ -x $d/initdb && -x $d/postgres ]] && { printf '%s\n' "$d"; return 0; }
  fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]] && { printf '%s\n' "$d"; return 0; }
  done
  return 1
}

# Run a server binary as the server's user.
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}


cmd="$1"
case "$cmd" in
  bindir)
    pg_bindir || die "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found"
    ;;
  start)
    [[ $# -ge 2 ]] || die "usage: $PROG start DIR [OWNER_PID]"
    dir="$2"
    owner="${3:-}"
    bin="$(pg_bindir)" || die "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    if [[ $(id -u) -eq 0 ]]; then
      id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user to run the server"
      chown postgres "$dir"
      runuser -u postgres -- test -w "$dir" ||
        die "the postgres user cannot reach $dir (a parent directory is not searchable by it)"
    fi
    data="$dir/data"
    [[ -e $data ]] && die "$data exists already"
    as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C --no-sync \
      >"$dir/initdb.log" 2>&1 || die "initdb failed: $(tail -5 "$dir/initdb.log")"
    # Loopback TCP only; local connections through the socket in DIR.
    cat >"$data/pg_hba.conf" <<'EOF'
local all all               trust
host  all all 127.0.0.1/32  trust
EOF
    started=""
    for _ in 1 2 3 4 5; do
      port="$(pick_port)"
      opts="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$dir'"
      # Tests want speed, not durability; OMICSD_PG_FSYNC=on keeps PostgreSQL's durable defaults
      # (what scripts/bench-service.sh measures, as SQLite runs with synchronous=FULL).
      [[ ${OMICSD_PG_FSYNC:-off} == on ]] || opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
      opts+=" -c max_connections=200"
      if as_pg "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 -o "$opts" start >/dev/null 2>&1; then
        started=1
        break
      fi
      as_pg "$bin/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
    done
    [[ -n $started ]] || die "the server did not start: $(tail -5 "$dir/server.log" 2>/dev/null)"
    printf '%s\n' "$port" >"$dir/port"
    "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres omicsd_test >/dev/null 2>>"$dir/server.log" ||
      die "createdb omicsd_test failed: $(tail -5 "$dir/server.log")"
    if [[ -n $owner ]]; then
      # Watchdog: stop the server once the owner is gone without having stopped it (or removed
      # DIR). Detached from our stdout, so a caller reading it sees EOF now.
      root=0
      [[ $(id -u) -eq 0 ]] && root=1
      nohup bash -c '
        owner=$1 data=$2 pg_ctl=$3 root=$4
        while kill -0 "$owner" 2>/dev/null && [[ -f $data/postmaster.pid ]]; do sleep 1; done
        [[ -f $data/postmaster.pid ]] || exit 0
        if [[ $root == 1 ]]; then
          runuser -u postgres -- "$pg_ctl" -D "$data" -m immediate stop
        else
          "$pg_ctl" -D "$data" -m immediate stop
        fi' watchdog "$owner" "$data" "$bin/pg_ctl" "$root" >/dev/null 2>&1 </dev/null &
    fi
    printf 'postgres://postgres@127.0.0.1:%s/omicsd_test\n' "$port"
    ;;
  stop)
    [[ $# -ge 2 ]] || die "usage: $PROG stop DIR"
    dir="$2"
    [[ -f $dir/data/postmaster.pid ]] || exit 0
    bin="$(pg_bindir)" || die "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found"
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    ;;
  *)
    die "unknown command '$cmd' (expected start, stop or bindir)"
    ;;
esac
