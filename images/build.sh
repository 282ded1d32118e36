#!/usr/bin/env bash
# Build the stbench images on the local Docker engine (`make build`).
#
#   images/build.sh
#
# 1. base image (images/base/ensure-base.sh: local, pulled, or a debootstrap stand-in)
# 2. wheelhouse (images/wheelhouse.sh: skipped when pyproject.toml and stbench/ are unchanged)
# 3. docker build of images/runtime (Python, stbench and its dependencies), then of
#    images/trainer and images/orchestrator on top of it (an entrypoint each), tagged
#    stbench-<role>:<version>-<gitsha> and stbench-<role>:latest
#    (version from pyproject.toml, sha from `git rev-parse --short HEAD`, `nogit` without git)
# Reruns reuse the layer cache: unchanged dependencies are not reinstalled, and the two
# images share every layer but their ENTRYPOINT.
# 4. with GPU=1 also stbench-trainer-gpu: the trainer plus a CUDA build of PyTorch (about
#    6 GB; images/torch-wheels.sh, then images/trainer-gpu/Dockerfile)
# Environment: BASE_IMAGE (default python:3.11-slim), IMAGES (default "trainer orchestrator"),
# GPU (default 0).
# Needs a running engine (images/docker-up.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

# One build at a time per checkout: two would share build/wheelhouse.tmp and break each other.
mkdir -p build
exec 9>build/.build.lock
flock 9

BASE_IMAGE="${BASE_IMAGE:-python:3.11-slim}"
IMAGES="${IMAGES:-trainer orchestrator}"
# The engine may be older than the client and has no BuildKit: use the classic builder.
export DOCKER_BUILDKIT=0

log() { echo "build: $*" >&2; }
t0=$SECONDS
step() { log "$1 took $((SECONDS - t_step))s"; t_step=$SECONDS; }
t_step=$SECONDS

version="$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
sha="$(git rev-parse --short HEAD 2>/dev/null || echo nogit)"
tag="$version-$sha"

images/base/ensure-base.sh "$BASE_IMAGE"
step "base image"
images/wheelhouse.sh
step "wheelhouse"

# The runtime image first: the role images are its layers plus an entrypoint.
for role in runtime $IMAGES; do
    image="stbench-$role"
    log "docker build $image:$tag"
    # Quiet build, the full log only when it fails.
    build_log="$(mktemp)"
    if ! docker build --network host --build-arg "BASE_IMAGE=$BASE_IMAGE" \
            --build-arg "RUNTIME_IMAGE=stbench-runtime:$tag" \
            --label "org.opencontainers.image.version=$version" \
            --label "org.opencontainers.image.revision=$sha" \
            -f "images/$role/Dockerfile" -t "$image:$tag" -t "$image:latest" . >"$build_log" 2>&1; then
        cat "$build_log" >&2
        rm -f "$build_log"
        log "docker build of $image failed"
        exit 1
    fi
    cached="$(grep -c 'Using cache' "$build_log" || true)"
    steps="$(grep -c '^Step ' "$build_log" || true)"
    rm -f "$build_log"
    step "$image ($cached of $steps steps from the layer cache)"
done

if [ "${GPU:-0}" = 1 ]; then
    images/torch-wheels.sh
    step "torch wheels"
    log "docker build stbench-trainer-gpu:$tag (several GB)"
    docker build --network host --build-arg "TRAINER_IMAGE=stbench-trainer:$tag" \
        --label "org.opencontainers.image.version=$version" \
        --label "org.opencontainers.image.revision=$sha" \
        -f images/trainer-gpu/Dockerfile -t "stbench-trainer-gpu:$tag" \
        -t stbench-trainer-gpu:latest build/wheelhouse-torch >&2
    step "stbench-trainer-gpu"
    IMAGES="$IMAGES trainer-gpu"
fi

log "done in $((SECONDS - t0))s"
for role in $IMAGES; do
    image="stbench-$role"
    size="$(docker image inspect -f '{{.Size}}' "$image:$tag")"
    printf '%-34s %6d MB  (%s)\n' "$image:$tag" "$((size / 1000000))" \
        "$(docker image inspect -f '{{.Id}}' "$image:$tag" | cut -c1-19)"
done
