#!/usr/bin/env bash
# Build the CPU container image with podman (no registry needed) and test it end to end: a daemon
# container and two Batch-worker containers on loopback complete a germline run on the shared NA12878
# data; the VCF must hold every GIAB truth SNV; SIGTERM drains a worker (exit 0); a bad token exits 2,
# an unreachable server exits 3 (the codes the AWS Batch retry strategy keys on) and OMICSD_ONCE=true
# on an empty queue exits 0; the image is under 300 MB; then TES tasks whose executors run in podman
# (a host daemon and `omicsd worker --task-runtime podman`, tests/service/api/tes_podman_test.py). Not part of scripts/test.sh or CI: the
# in-container compile takes 12+ min on 2 shared cores (later runs reuse podman's layer cache, but any
# change under host/, cuda/ or service/ recompiles everything).
#
# With --cuda it builds and tests the CUDA image instead (issue 23): the build stage compiles with the
# machine's own CUDA toolkit bind-mounted read-only at /usr/local/cuda (no nvidia/cuda image, no NVIDIA
# repository), for sm_80 and sm_90; the runtime stage holds no toolkit (the CUDA runtime is linked
# statically; the NVIDIA container runtime mounts the driver on a GPU host). Without a GPU it checks
# that --version names the CUDA backends, that `omicsd run --backend auto` falls back to the CPU (its
# log line) and finds all truth SNVs, that `--backend cuda` fails with one line and exit 2, and then
# runs the same daemon + worker test on the CUDA image.
#
# Usage: scripts/container-test.sh [--cuda] [--build-only]
#   --cuda           the CUDA image (default IMAGE localhost/omicsd:cuda); CUDA_HOME (default
#                    /usr/local/cuda) is the toolkit mounted into the build, CUDA_ARCHITECTURES "80;90"
#   --build-only     build (and size-check) the image, skip the end-to-end test
#   OMICSD_DATA_DIR  cache: the debootstrap base tarball lives in $OMICSD_DATA_DIR/container
#                    (default: ~/.cache/omicsd)
#   IMAGE            image tag to build and test (default: localhost/omicsd:cpu)
#   JOBS             compile jobs inside the build (default: 2)
#   OMICSD_GIT_HASH  the hash baked into the image (default: HEAD's; a new one recompiles everything,
#                    so a docs-only commit can reuse the image's cached compile with the old hash)
#   MIRROR           Debian mirror for debootstrap (default: the host's apt source)
#   MAX_IMAGE_MB     size limit (default: 300)
#   KEEP=1           keep the work directory and the containers' logs
#   OMICSD_BUILD_DIR / OMICSD_BIN  the host build whose omicsd runs the TES stage's daemon and
#                    podman worker (scripts/build.sh first; py-tes from scripts/setup.sh in .venv/tes)
# Needs root (apt-get, podman). Installs podman, runc and debootstrap when missing.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

BUILD_ONLY=0
CUDA=0
for arg in "$@"; do
  case "$arg" in
    -h | --help) usage; exit 0 ;;
    --build-only) BUILD_ONLY=1 ;;
    --cuda) CUDA=1 ;;
    *) die "unknown argument '$arg' (see --help)" ;;
  esac
done
[[ $(id -u) -eq 0 ]] || die "run as root (podman here runs rootful, with runc and cgroupfs)"
script_t0=$SECONDS

BUILD_ARGS=()
if ((CUDA)); then
  IMAGE="${IMAGE:-localhost/omicsd:cuda}"
  # The toolkit directory itself (/usr/local/cuda is usually a link to /usr/local/cuda-X.Y), mounted
  # read-only over the build stage's /usr/local/cuda, where CMake looks for nvcc.
  CUDA_DIR="$(readlink -f "${CUDA_HOME:-/usr/local/cuda}")"
  [[ -x $CUDA_DIR/bin/nvcc ]] || die "no nvcc under ${CUDA_HOME:-/usr/local/cuda} (set CUDA_HOME)"
  CUDA_ARCHITECTURES="${CUDA_ARCHITECTURES:-80;90}"
  BUILD_ARGS=(-v "$CUDA_DIR:/usr/local/cuda:ro" --build-arg OMICSD_CUDA=ON
    --build-arg CUDA_ARCHITECTURES="$CUDA_ARCHITECTURES")
else
  IMAGE="${IMAGE:-localhost/omicsd:cpu}"
fi
BASE_IMAGE=localhost/debian:12
JOBS="${JOBS:-2}"
MAX_IMAGE_MB="${MAX_IMAGE_MB:-300}"
CACHE="$(data_dir)/container"
DATA="$(cd "$REPO_ROOT/.." && pwd)/shared/data/na12878-chr22-tiny"
mkdir -p "$CACHE"

# --- tools ---------------------------------------------------------------------------------------
missing=()
for p in podman runc debootstrap; do
  command -v "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends podman runc debootstrap
fi
if ! ((BUILD_ONLY)); then
  need_tools curl bcftools python3
  tes_bin="$(omicsd_bin)"  # the TES stage's host daemon and worker (checked before the long build)
  tes_py="$REPO_ROOT/.venv/tes/bin/python"
  [[ -x $tes_py ]] || die "$tes_py missing: run scripts/setup.sh (py-tes)"
fi

# podman in this sandbox: no ulimit defaults (setrlimit is refused), cgroupfs instead of systemd, runc
# (the only OCI runtime installed; also for the TES worker's own `podman run`s, which read this file).
export CONTAINERS_CONF="$CACHE/containers.conf"
cat >"$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
EOF
PODMAN=(podman --runtime runc)

# --- Debian 12 base image from debootstrap (no registry) ------------------------------------------
# The host's Debian apt source (deb822 or one-line format) and any proxy apt uses.
host_mirror() {
  local u
  u="$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -E '/debian/?$' | head -n1)"
  [[ -n $u ]] || u="$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
    awk '{print $2}' | grep -E '/debian/?$' | head -n1)"
  printf '%s\n' "${u:-http://deb.debian.org/debian}"
}
MIRROR="${MIRROR:-$(host_mirror)}"
APT_PROXY="$(apt-config dump 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p' | head -n1)"

BASE_TAR="$CACHE/debian-bookworm-minbase.tar"
if [[ ! -s $BASE_TAR ]]; then
  log "debootstrap --variant=minbase bookworm from $MIRROR${APT_PROXY:+ (proxy $APT_PROXY)} (once; cached in $BASE_TAR)"
  root="$CACHE/rootfs.tmp"
  rm -rf "$root"
  http_proxy="${APT_PROXY:-${http_proxy:-}}" debootstrap --variant=minbase bookworm "$root" "$MIRROR" \
    >"$CACHE/debootstrap.log" 2>&1 || die "debootstrap failed (see $CACHE/debootstrap.log)"
  # Slim like debian:bookworm-slim: no apt lists or package cache, no docs/man/locales, and dpkg
  # keeps it that way for the packages the image builds install.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/var/log/* "$root"/tmp/*
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  cat >"$root/etc/dpkg/dpkg.cfg.d/01-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/info/*
EOF
  cat >"$root/etc/apt/apt.conf.d/01-slim" <<'EOF'
APT::Install-Recommends "false";
Binary::apt::APT::Keep-Downloaded-Packages "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
EOF
  tar -C "$root" --numeric-owner -cf "$BASE_TAR.tmp" . && mv "$BASE_TAR.tmp" "$BASE_TAR"
  rm -rf "$root"
fi

# The image builds run apt-get inside the base: give it the host's Debian sources and apt proxy /
# validity settings (the mirror may be a snapshot), appended to the cached tarball at import time.
aptdir="$(mktemp -d "${TMPDIR:-/tmp}/omicsd-apt.XXXXXX")"
trap 'rm -rf "$aptdir"' EXIT
mkdir -p "$aptdir/etc/apt/sources.list.d" "$aptdir/etc/apt/apt.conf.d"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [[ -s $f ]] || continue
  # Debian sources only (not third-party repositories the host may have).
  if grep -qE '^(URIs:|deb )' "$f" &&
    ! grep -hE '^URIs:|^deb ' "$f" | awk '{ for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) print $i }' |
      grep -vqE '/debian(-security)?/?$'; then
    cp "$f" "$aptdir${f}"
  fi
done
if compgen -G "$aptdir/etc/apt/sources.list.d/*" >/dev/null; then
  [[ -e $aptdir/etc/apt/sources.list ]] || : >"$aptdir/etc/apt/sources.list"  # replace debootstrap's
fi
for f in /etc/apt/apt.conf.d/*; do
  grep -qsE 'Proxy|Check-Valid-Until|Check-Date' "$f" && cp "$f" "$aptdir/etc/apt/apt.conf.d/"
done
base_id="$( (sha256sum "$BASE_TAR" | cut -c1-16; tar -C "$aptdir" -c --sort=name --mtime=@0 --owner=0 \
  --group=0 --numeric-owner . | sha256sum | cut -c1-16) | tr -d '\n')"
have_id="$("${PODMAN[@]}" image inspect --format '{{index .Labels "omicsd.base"}}' "$BASE_IMAGE" 2>/dev/null || true)"
if [[ $have_id != "$base_id" ]]; then
  log "importing $BASE_IMAGE (apt config: $(cd "$aptdir" && find etc -type f | sort | tr '\n' ' '))"
  "${PODMAN[@]}" import --change 'CMD ["/bin/bash"]' "$BASE_TAR" "$BASE_IMAGE-minbase" >/dev/null 2>&1 ||
    die "podman import $BASE_TAR failed"
  printf 'FROM %s\nCOPY etc/apt/ /etc/apt/\nLABEL omicsd.base=%s\n' "$BASE_IMAGE-minbase" "$base_id" \
    >"$aptdir/Containerfile"
  "${PODMAN[@]}" build --isolation=chroot --network=host --pull=never -q -t "$BASE_IMAGE" \
    -f "$aptdir/Containerfile" "$aptdir" >/dev/null
fi
rm -rf "$aptdir"
trap - EXIT

# --- the omicsd image ----------------------------------------------------------------------------
# Build from a snapshot of the paths the Dockerfile copies, so edits made while it compiles do not
# leak into the image half way.
ctx="$(mktemp -d "${TMPDIR:-/tmp}/omicsd-ctx.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/docs" "$ctx/docker"
cp -a "$REPO_ROOT"/{CMakeLists.txt,host,cuda,backends,service,.dockerignore} "$ctx/"
cp -a "$REPO_ROOT/docs/openapi.json" "$ctx/docs/"
cp -a "$REPO_ROOT/docker/Dockerfile" "$REPO_ROOT/docker/runtime-deps.sh" "$ctx/docker/"
hash="${OMICSD_GIT_HASH:-$(git -C "$REPO_ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}"
buildlog="$CACHE/image-build-${IMAGE##*:}.log"
old_id="$("${PODMAN[@]}" image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
log "podman build $IMAGE (git $hash, $JOBS jobs${CUDA_DIR:+, CUDA toolkit $CUDA_DIR}; log: $buildlog)"
t0=$SECONDS
if ! "${PODMAN[@]}" build --isolation=chroot --network=host --pull=never -f "$ctx/docker/Dockerfile" \
  --build-arg BUILD_BASE="$BASE_IMAGE" --build-arg RUNTIME_BASE="$BASE_IMAGE" "${BUILD_ARGS[@]}" \
  --build-arg OMICSD_GIT_HASH="$hash" --build-arg JOBS="$JOBS" -t "$IMAGE" "$ctx" 2>&1 |
  while IFS= read -r line; do printf '%(%H:%M:%S)T %s\n' -1 "$line"; done >"$buildlog"; then
  tail -n 30 "$buildlog" >&2
  die "image build failed (see $buildlog)"
fi
rm -rf "$ctx"
trap - EXIT
build_s=$((SECONDS - t0))
new_id="$("${PODMAN[@]}" image inspect --format '{{.Id}}' "$IMAGE")"
if [[ -n $old_id && $old_id != "$new_id" ]]; then  # the image this build replaced
  "${PODMAN[@]}" rmi "$old_id" >/dev/null 2>&1 || true
fi
# Untagged build stages of older builds (the newest one is the layer cache of the next build).
"${PODMAN[@]}" images -q --filter dangling=true --filter label=omicsd.stage=build | tail -n +2 |
  while read -r id; do "${PODMAN[@]}" rmi "$id" >/dev/null 2>&1 || true; done
size=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE")
size_mb=$(( (size + 500000) / 1000000 ))
log "built $IMAGE in ${build_s} s: $size_mb MB ($size bytes); $(grep -v STEP "$buildlog" | grep -m1 -o 'runtime packages:.*' || true)"
((size_mb < MAX_IMAGE_MB)) || die "image is $size_mb MB, over the $MAX_IMAGE_MB MB limit"
version="$("${PODMAN[@]}" run --rm --network=host "$IMAGE" --version)"
log "image runs: $version"
[[ $version == *"$hash"* ]] || die "--version does not carry the git hash $hash"
user="$("${PODMAN[@]}" image inspect --format '{{.Config.User}}' "$IMAGE")"
[[ $user != "" && $user != 0* && $user != root* ]] || die "image runs as root (User='$user')"
if ((CUDA)); then
  # The kernels of both architectures are in the binary, and the toolkit stayed in the build stage.
  [[ $version == *"backends: cpu, cuda (CUDA "* ]] || die "--version names no CUDA backend: $version"
  for a in ${CUDA_ARCHITECTURES//;/ }; do
    [[ $version == *"sm_${a%-*}"* ]] || die "--version lacks sm_${a%-*}: $version"
  done
  # (podman build -v leaves its mount point, an empty /usr/local/cuda, in every stage.)
  toolkit="$("${PODMAN[@]}" run --rm --network=host --user 0 --entrypoint /bin/sh "$IMAGE" -c \
    'ls -A /usr/local/cuda; find / -xdev \( -name nvcc -o -name "libcudart*" -o -name "libcuda.so*" \) -print')"
  [[ -z $toolkit ]] || die "the runtime stage holds CUDA toolkit files: $toolkit"
fi
log "layers (newest first; empty ones left out): $("${PODMAN[@]}" history --format '{{.Size}} {{.CreatedBy}}' "$IMAGE" |
  grep -v '^0 B' | cut -c1-60 | tr '\n' '|')"
((BUILD_ONLY)) && { log "OK (--build-only)"; exit 0; }

# --- end to end: daemon + 2 workers on loopback ----------------------------------------------------
[[ -s $DATA/q.fa && -s $DATA/truth.vcf.gz ]] || die "shared data not found at $DATA"
make_workdir WORK
SHARED="$WORK/objects"  # the daemon's --data-dir, mounted at the same path in every container
mkdir -p "$SHARED" "$WORK/etc"
chown 10001:10001 "$SHARED"  # the image's omicsd user
printf '%s client\n%s worker\n' ct-client-token ct-worker-token >"$WORK/etc/tokens"
chmod 0644 "$WORK/etc/tokens"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT"
NAME="omicsd-ct-$$"
CONTAINERS=()
cleanup() {
  local c
  for c in "${CONTAINERS[@]}"; do
    if [[ ${KEEP:-0} == 1 ]]; then "${PODMAN[@]}" logs "$c" >"$WORK/$c.log" 2>&1 || true; fi
    "${PODMAN[@]}" rm -f -t 0 "$c" >/dev/null 2>&1 || true
  done
  [[ ${KEEP:-0} == 1 ]] || rm -rf "$WORK"
}
trap cleanup EXIT
# The minimizer index is written next to the FASTA on first use, so a read-only reference needs it
# prebuilt: copy the reference, index it with the image (`omicsd index`), then mount it read-only
# beside the read-only NA12878 data.
mkdir -p "$WORK/refs"
cp "$DATA/q.fa" "$DATA/q.fa.fai" "$WORK/refs/"
"${PODMAN[@]}" run --rm --network=host --user 0 -v "$WORK/refs:/data/refs" "$IMAGE" index /data/refs/q.fa \
  >"$WORK/index.log" 2>&1 || { cat "$WORK/index.log" >&2; die "omicsd index in the container failed"; }
MOUNTS=(-v "$SHARED:$SHARED" -v "$DATA:/data/na12878:ro" -v "$WORK/refs:/data/refs:ro")
api() {  # api METHOD PATH [curl args...]
  local m="$1" p="$2"; shift 2
  curl -fsS -X "$m" -H "Authorization: Bearer ct-client-token" "$@" "$URL$p"
}

log "daemon container on $URL (SQLite, --workers 0, tokens)"
CONTAINERS+=("$NAME-daemon")
"${PODMAN[@]}" run -d --name "$NAME-daemon" --network=host --read-only "${MOUNTS[@]}" \
  -v "$WORK/etc/tokens:/etc/omicsd/tokens:ro" "$IMAGE" \
  serve --listen "127.0.0.1:$PORT" --data-dir "$SHARED" --allow-root /data --workers 0 \
  --token-file /etc/omicsd/tokens --lease-seconds 30 >/dev/null
for _ in $(seq 1 100); do
  curl -fsS "$URL/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "$URL/healthz" >/dev/null || { "${PODMAN[@]}" logs "$NAME-daemon" >&2; die "daemon not healthy"; }

for i in 1 2; do
  CONTAINERS+=("$NAME-worker$i")
  "${PODMAN[@]}" run -d --name "$NAME-worker$i" --network=host --read-only "${MOUNTS[@]}" \
    -e OMICSD_SERVER="$URL" -e OMICSD_TOKEN=ct-worker-token -e OMICSD_DATA_DIR="$SHARED" \
    -e OMICSD_THREADS=1 -e OMICSD_LEASE_SECONDS=30 \
    -e AWS_BATCH_JOB_ID="ct-$$" -e AWS_BATCH_JOB_ARRAY_INDEX="$i" -e AWS_BATCH_JOB_ATTEMPT=1 \
    "$IMAGE" worker >/dev/null
done
log "2 worker containers started (configured by environment only, read-only root file system)"

# submit_and_wait SAMPLE: submit a germline run of the NA12878 data, wait for it to end, leave the
# record in $WORK/run-SAMPLE.json and the run id in $run_id; dies unless it is COMPLETE.
submit_and_wait() {
  local sample="$1" body state="" t0=$SECONDS
  body="$(python3 -c 'import json,sys; print(json.dumps({"workflow": "germline", "sample": sys.argv[1],
    "inputs": {"reference": "/data/refs/q.fa", "reads": ["file:///data/na12878/NA12878.chr22.tiny.bam"]},
    "parameters": {"threads": 1}}))' "$sample")"
  run_id="$(api POST /v1/runs -H 'Content-Type: application/json' -H "Idempotency-Key: ct-$$-$sample" \
    -d "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
  log "submitted germline run $run_id (sample $sample)"
  for _ in $(seq 1 600); do
    api GET "/v1/runs/$run_id" >"$WORK/run-$sample.json"
    state="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["state"])' "$WORK/run-$sample.json")"
    [[ $state == COMPLETE || $state == FAILED || $state == CANCELED ]] && break
    sleep 1
  done
  run_s=$((SECONDS - t0))
  if [[ $state != COMPLETE ]]; then
    cat "$WORK/run-$sample.json" >&2
    for c in "${CONTAINERS[@]}"; do "${PODMAN[@]}" logs --tail 20 "$c" >&2 || true; done
    die "run $run_id ended $state (after ${run_s} s)"
  fi
  # Every task ran on a Batch-named worker and carries the AWS Batch context in its provenance.
  python3 - "$WORK/run-$sample.json" <<'EOF' || die "run record check failed"
import json, sys
run = json.load(open(sys.argv[1]))
workers = sorted({t["worker_id"] for t in run["tasks"]})
assert all(w.startswith("batch-ct-") for w in workers), workers
prov = run["provenance"]["tasks"]  # task name -> provenance
assert len(prov) == len(run["tasks"]), list(prov)
for name, p in prov.items():
    batch = p.get("aws_batch", {})
    assert batch.get("job_id", "").startswith("ct-") and "array_index" in batch, name + ": " + json.dumps(p)[:600]
print(f"[container-test.sh] tasks ran on {', '.join(workers)}; provenance aws_batch: {json.dumps(batch)}",
      file=sys.stderr)
EOF
  log "run $run_id COMPLETE in ${run_s} s"
}

# check_vcf RUN_ID: the run's VCF has every GIAB truth SNV, with the truth genotype (the comparison
# of the GoogleTest suites, tests/support/test_support.cpp vcf_snvs).
snvs() { bcftools query -i 'GT="alt" && TYPE="snp"' -f '%CHROM %POS %REF %ALT [%GT]\n' "$1" | sort -u; }
check_truth_snvs() {  # check_truth_snvs VCF NAME
  snvs "$DATA/truth.vcf.gz" >"$WORK/truth.snvs"
  snvs "$1" >"$WORK/$2.snvs"
  n_truth=$(wc -l <"$WORK/truth.snvs")
  n_found=$(comm -12 "$WORK/truth.snvs" "$WORK/$2.snvs" | wc -l)
  log "VCF of $2: $n_found/$n_truth GIAB truth SNVs ($(wc -l <"$WORK/$2.snvs") SNV records)"
  ((n_truth > 0 && n_found == n_truth)) ||
    die "the VCF misses truth SNVs: $(comm -23 "$WORK/truth.snvs" "$WORK/$2.snvs" | tr '\n' ' ')"
}
check_vcf() {
  api GET "/v1/runs/$1/outputs/vcf" -o "$WORK/$1.vcf.gz"
  check_truth_snvs "$WORK/$1.vcf.gz" "$1"
}

if ((CUDA)); then
  # No GPU here (nor the driver the NVIDIA container runtime would mount): --backend auto runs the
  # whole germline pipeline on the CPU backends, saying why in one line per stage; --backend cuda is
  # refused with one line and exit 2 (bad input / configuration: not retried, docker/README.md).
  mkdir -p "$WORK/gpu-auto" "$WORK/gpu-cuda"
  chown 10001:10001 "$WORK/gpu-auto" "$WORK/gpu-cuda"
  GPU_RUN=("${PODMAN[@]}" run --rm --network=host --read-only -v "$DATA:/data/na12878:ro"
    -v "$WORK/refs:/data/refs:ro")
  "${GPU_RUN[@]}" -v "$WORK/gpu-auto:/out" "$IMAGE" run /data/refs/q.fa /data/na12878/NA12878.chr22.tiny.bam \
    -o /out --sample NA12878 -t 2 --backend auto >"$WORK/backend-auto.log" 2>&1 ||
    { cat "$WORK/backend-auto.log" >&2; die "omicsd run --backend auto failed in $IMAGE"; }
  grep -E 'backend: cpu \([0-9]+ threads\); .+' "$WORK/backend-auto.log" >&2 ||
    { cat "$WORK/backend-auto.log" >&2; die "--backend auto: no CPU fallback log line"; }
  check_truth_snvs "$WORK/gpu-auto/NA12878.vcf.gz" backend-auto
  set +e
  "${GPU_RUN[@]}" -v "$WORK/gpu-cuda:/out" "$IMAGE" run /data/refs/q.fa /data/na12878/NA12878.chr22.tiny.bam \
    -o /out --sample NA12878 -t 2 --backend cuda >"$WORK/backend-cuda.log" 2>&1
  code=$?
  set -e
  cat "$WORK/backend-cuda.log" >&2
  [[ $code == 2 ]] || die "--backend cuda without a GPU: exit $code (want 2)"
  grep -q '^omicsd: error: --backend cuda: ' "$WORK/backend-cuda.log" || die "--backend cuda: no clear error line"
  [[ -z $(ls -A "$WORK/gpu-cuda") ]] || die "--backend cuda left files behind: $(ls "$WORK/gpu-cuda")"
  log "no GPU: --backend auto ran on the CPU ($n_found/$n_truth truth SNVs), --backend cuda exit 2"
fi

# stop_container NAME: SIGTERM, then its exit status must be 0 (drained).
stop_container() {
  local code
  "${PODMAN[@]}" kill --signal TERM "$1" >/dev/null
  code="$(timeout 120 "${PODMAN[@]}" wait "$1")" || die "$1 did not exit within 120 s of SIGTERM"
  [[ $code == 0 ]] || { "${PODMAN[@]}" logs --tail 20 "$1" >&2; die "$1 exited $code after SIGTERM (want 0)"; }
  log "SIGTERM: $1 drained and exited 0"
}

submit_and_wait NA12878
shared_s=$run_s
check_vcf "$run_id"

stop_container "$NAME-worker1"
stop_container "$NAME-worker2"

# A worker without shared storage (--transfer http, as on Batch without EFS): its own data dir, no
# input mounts; inputs come from the daemon over HTTP and outputs go back the same way. A new sample
# name gives a new cache key, so the tasks really run.
mkdir -p "$WORK/worker3"
chown 10001:10001 "$WORK/worker3"
CONTAINERS+=("$NAME-worker3")
"${PODMAN[@]}" run -d --name "$NAME-worker3" --network=host --read-only -v "$WORK/worker3:/scratch" \
  -e OMICSD_SERVER="$URL" -e OMICSD_TOKEN=ct-worker-token -e OMICSD_TRANSFER=http \
  -e OMICSD_DATA_DIR=/scratch -e OMICSD_THREADS=1 -e AWS_BATCH_JOB_ID="ct-$$-http" \
  -e AWS_BATCH_JOB_ARRAY_INDEX=0 "$IMAGE" worker >/dev/null
log "worker 3 started with OMICSD_TRANSFER=http (no shared storage)"
submit_and_wait NA12878-http
http_s=$run_s
check_vcf "$run_id"
stop_container "$NAME-worker3"

# The exit codes the AWS Batch retry strategy keys on: bad token -> 2 (do not retry),
# unreachable server -> 3 (retry); OMICSD_ONCE=true on an empty queue -> 0 at once.
set +e
"${PODMAN[@]}" run --rm --network=host -v "$SHARED:$SHARED" -e OMICSD_SERVER="$URL" \
  -e OMICSD_TOKEN=wrong-token -e OMICSD_DATA_DIR="$SHARED" "$IMAGE" worker --once >"$WORK/bad-token.log" 2>&1
bad=$?
dead_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"${PODMAN[@]}" run --rm --network=host -v "$SHARED:$SHARED" -e OMICSD_SERVER="http://127.0.0.1:$dead_port" \
  -e OMICSD_DATA_DIR="$SHARED" "$IMAGE" worker --unreachable-timeout 2 >"$WORK/unreachable.log" 2>&1
unreach=$?
"${PODMAN[@]}" run --rm --network=host -v "$SHARED:$SHARED" -e OMICSD_SERVER="$URL" \
  -e OMICSD_TOKEN=ct-worker-token -e OMICSD_DATA_DIR="$SHARED" -e OMICSD_ONCE=true "$IMAGE" worker \
  >"$WORK/once.log" 2>&1
once=$?
set -e
[[ $bad == 2 ]] || { cat "$WORK/bad-token.log" >&2; die "bad token: exit $bad (want 2)"; }
[[ $unreach == 3 ]] || { cat "$WORK/unreachable.log" >&2; die "unreachable server: exit $unreach (want 3)"; }
[[ $once == 0 ]] || { cat "$WORK/once.log" >&2; die "OMICSD_ONCE=true on an empty queue: exit $once (want 0)"; }
grep -q 'queue empty' "$WORK/once.log" || { cat "$WORK/once.log" >&2; die "OMICSD_ONCE=true was not honoured"; }
log "exit codes: bad token 2, unreachable server 3, OMICSD_ONCE=true on an empty queue 0"

stop_container "$NAME-daemon"

# --- TES executors in podman (issue 17) ----------------------------------------------------------
# `omicsd serve` and `omicsd worker --task-runtime podman` on the host (the worker drives the podman
# client, which the image does not hold; the host build's binary, OMICSD_BUILD_DIR or OMICSD_BIN) run
# py-tes tasks whose executors run in $BASE_IMAGE: inputs, three executors, outputs, a failing
# executor, cancel of a running executor and a draining worker, with no container left behind.
log "TES tasks with --task-runtime podman (executors in $BASE_IMAGE; host binary $tes_bin)"
"$tes_py" "$REPO_ROOT/tests/service/api/tes_podman_test.py" --binary "$tes_bin" --image "$BASE_IMAGE" \
  >"$WORK/tes-podman.log" 2>&1 || { tail -n 60 "$WORK/tes-podman.log" >&2; die "TES with podman failed"; }
tes_checks=$(grep -c '^ok:' "$WORK/tes-podman.log")
log "TES with podman: $tes_checks checks passed"

log "OK in $((SECONDS - script_t0)) s: image $IMAGE $size_mb MB (built in ${build_s} s); germline runs in containers: shared object dir ${shared_s} s, --transfer http ${http_s} s; $n_found/$n_truth truth SNVs; SIGTERM exit 0; exit codes 2/3/0; TES with podman $tes_checks checks"
