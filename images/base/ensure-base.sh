#!/usr/bin/env bash
# Make sure the base image of the stbench images exists locally, for linux/amd64 (the
# platform images/build.sh builds for, whatever the host's).
#
#   images/base/ensure-base.sh [IMAGE]        (default: python:3.11-slim)
#
# 1. IMAGE is in the local engine, for linux/amd64: done.
# 2. `docker pull --platform linux/amd64 IMAGE` (what a laptop or any machine that reaches
#    the image's registry gets), bounded by PULL_TIMEOUT_S (default 300 s; 0 skips it).
# 3. Offline fallback, where the pull fails: build a stand-in, a Debian bookworm minbase root
#    file system made by debootstrap (python3 3.11, python3-venv, ca-certificates) from the
#    Debian mirror that the host's apt uses, imported with `docker import` under the name
#    IMAGE. It offers what the Dockerfiles rely on: `python3 -m venv`. About a minute; needs
#    root on a linux x86_64 host.
# Environment: DEBIAN_MIRROR overrides the mirror taken from the host's apt configuration.
set -euo pipefail

IMAGE="${1:-python:3.11-slim}"
SUITE="${SUITE:-bookworm}"
PULL_TIMEOUT_S="${PULL_TIMEOUT_S:-300}"
PLATFORM=linux/amd64
here="$(cd "$(dirname "$0")" && pwd)"

log() { echo "ensure-base: $*" >&2; }

platform="$(docker image inspect -f '{{.Os}}/{{.Architecture}}' "$IMAGE" 2>/dev/null || true)"
if [ "$platform" = "$PLATFORM" ]; then
    log "$IMAGE exists locally ($(docker image inspect -f '{{.Id}}' "$IMAGE" | cut -c1-19)); nothing to do"
    exit 0
fi
[ -z "$platform" ] || log "the local $IMAGE is $platform, not $PLATFORM"

if [ "$PULL_TIMEOUT_S" != "0" ]; then
    log "trying docker pull --platform $PLATFORM $IMAGE (at most ${PULL_TIMEOUT_S}s)"
    bound=()
    if command -v timeout >/dev/null 2>&1; then bound=(timeout "$PULL_TIMEOUT_S"); fi
    if ${bound[@]+"${bound[@]}"} docker pull --platform "$PLATFORM" -q "$IMAGE" >/dev/null 2>&1; then
        log "pulled $IMAGE"
        exit 0
    fi
    log "pull failed; building a debootstrap stand-in"
fi

if [ "$(uname -s)/$(uname -m)" != Linux/x86_64 ] || [ "$(id -u)" -ne 0 ]; then
    log "cannot pull $IMAGE for $PLATFORM, and the debootstrap stand-in needs root on a" \
        "linux x86_64 host: check that the engine reaches the image's registry"; exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    log "apt-get install debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

mirror="${DEBIAN_MIRROR:-$(python3 "$here/debian-mirror.py" "$SUITE")}"
rootfs="$(mktemp -d /var/tmp/stbench-base.XXXXXX)"
cleanup() { rm -rf --one-file-system "$rootfs"; }
trap cleanup EXIT

start=$SECONDS
log "debootstrap --variant=minbase $SUITE from $mirror into $rootfs"
if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        "$SUITE" "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
    tail -n 30 "$rootfs.log" >&2
    [ -f "$rootfs/debootstrap/debootstrap.log" ] && tail -n 30 "$rootfs/debootstrap/debootstrap.log" >&2
    rm -f "$rootfs.log"
    exit 1
fi
rm -f "$rootfs.log"

# Trim what an image does not need: downloaded packages, package lists, documentation and
# message translations (33 MB; python:3.11-slim ships none of these either).
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
    "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* \
    "$rootfs"/tmp/* "$rootfs"/root/.cache
# Like python:3.11-slim: later `apt-get install`s in derived images skip docs too.
mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
    'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
    'path-exclude /usr/share/locale/*' >"$rootfs/etc/dpkg/dpkg.cfg.d/stbench-slim"

log "docker import -> $IMAGE"
tar --numeric-owner -C "$rootfs" -c . | docker import --platform "$PLATFORM" \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    --change "LABEL org.stbench.base-standin=debootstrap-$SUITE-minbase" \
    --message "stbench stand-in for $IMAGE: debootstrap --variant=minbase $SUITE" \
    - "$IMAGE" >/dev/null
log "built stand-in $IMAGE in $((SECONDS - start))s:" \
    "$(docker run --rm --network host "$IMAGE" python3 --version 2>&1)," \
    "$(( $(docker image inspect -f '{{.Size}}' "$IMAGE") / 1000000 )) MB"
