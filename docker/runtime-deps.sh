#!/bin/sh
# Print the Debian/Ubuntu packages that hold the shared libraries BINARY loads (one per line), so the
# runtime stage installs exactly what the build stage linked against, whatever the base distribution.
# Fails when a library is not found or belongs to no package (for example a CUDA library under
# /usr/local/cuda: omicsd links the CUDA runtime statically, so none should appear).
# Usage: runtime-deps.sh BINARY
set -eu
bin=${1:?usage: runtime-deps.sh BINARY}
[ -x "$bin" ] || { echo "runtime-deps.sh: $bin: not an executable" >&2; exit 1; }
out=$(ldd "$bin") || { echo "runtime-deps.sh: ldd $bin failed" >&2; exit 1; }
if printf '%s\n' "$out" | grep -q 'not found'; then
  ldd "$bin" >&2
  echo "runtime-deps.sh: $bin has unresolved libraries" >&2
  exit 1
fi
libs=$(printf '%s\n' "$out" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
pkgs=""
for lib in $libs; do
  real=$(readlink -f "$lib")
  pkg=""
  # Merged /usr: the package may list the file under /lib or /usr/lib, by its soname or real name.
  for p in "$lib" "$real" "${lib#/usr}" "/usr$lib" "${real#/usr}" "/usr$real"; do
    pkg=$(dpkg-query -S "$p" 2>/dev/null | head -n1 | cut -d: -f1) && [ -n "$pkg" ] && break
  done
  if [ -z "$pkg" ]; then
    echo "runtime-deps.sh: no package owns $lib ($real)" >&2
    exit 1
  fi
  pkgs="$pkgs $pkg"
done
# shellcheck disable=SC2086  # one package per word
printf '%s\n' $pkgs | sort -u
