#!/usr/bin/env bash
# Build the stbench images on the local Docker engine (`make build`).
#
#   images/build.sh
#
# Needs a running engine (images/docker-up.sh on Linux, Docker Desktop on a Mac) and bash;
# no Python on the host. Every image is built for linux/amd64 (`--platform`), the platform of
# SageMaker's training instances, whatever the host's (on Apple silicon, Docker Desktop
# emulates the build's RUN steps).
#
# 1. base image (images/base/ensure-base.sh: local, pulled, or a debootstrap stand-in)
# 2. docker build of images/runtime: Python, stbench and its dependencies. pip runs inside
#    the build (images/deps.py) with the host's package index and CA certificate when they
#    are set: PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_TRUSTED_HOST (or pip's configuration
#    files, read with `pip config list` when a pip is on the PATH); the certificate from
#    PIP_CERT, pip's `cert` setting, REQUESTS_CA_BUNDLE or SSL_CERT_FILE. They travel in
#    build/image-pip/ (pip.conf, ca.crt), which only build stages COPY: no image layer holds
#    them. HTTP(S)_PROXY and NO_PROXY are passed as build arguments (Docker keeps those out of
#    the image history).
#    Offline fallback: WHEELHOUSE=1, or automatically when pip inside the build cannot reach
#    an index, installs from build/wheelhouse/ instead (images/wheelhouse.sh, built on the
#    host; needs CPython 3.11 on linux x86_64). WHEELHOUSE=0 never falls back.
# 3. images/trainer and images/orchestrator (an entrypoint each) on top of the runtime images:
#    stbench-runtime for the trainer, stbench-orchestrator-runtime (a later stage of the same
#    Dockerfile, only what the orchestrator loads: images/slim.py) for the orchestrator; both
#    tagged stbench-<role>:<version>-<gitsha> and stbench-<role>:latest (version from
#    pyproject.toml, sha from `git rev-parse --short HEAD`, `nogit` without git), or with
#    IMAGE_TAG=<tag> only stbench-<role>:<tag> (`make push IMAGE_TAG=<tag>` pushes those).
# Reruns reuse the layer cache: unchanged dependencies are not reinstalled (seconds). The
# trainer is the orchestrator's dependency layer plus one layer with what only trials need.
# 4. with GPU=1 also stbench-trainer-gpu: the trainer plus a CUDA build of PyTorch (about
#    6 GB; images/trainer-gpu/Dockerfile, the wheelhouse fallback images/torch-wheels.sh)
# Environment: BASE_IMAGE (default python:3.11-slim), IMAGES (default "trainer orchestrator"),
# GPU (default 0), WHEELHOUSE (unset: automatic), IMAGE_TAG.
set -euo pipefail
cd "$(dirname "$0")/.."

# One build at a time per checkout: two would share build/image-pip and break each other.
mkdir -p build
if command -v flock >/dev/null 2>&1; then
    exec 9>build/.build.lock
    flock 9
fi

BASE_IMAGE="${BASE_IMAGE:-python:3.11-slim}"
IMAGES="${IMAGES:-trainer orchestrator}"
WHEELHOUSE="${WHEELHOUSE:-}"
PLATFORM=linux/amd64
PIP_DIR=build/image-pip
UNREACHABLE_MARK="deps: no package index reachable"
# The engine may be older than the client and have no BuildKit: use the classic builder.
export DOCKER_BUILDKIT=0

log() { echo "build: $*" >&2; }
t0=$SECONDS
t_step=$SECONDS
step() { log "$1 took $((SECONDS - t_step))s"; t_step=$SECONDS; }

version="$(awk -F'"' '/^\[/ { section = $0 } section == "[project]" && /^version *=/ { print $2; exit }' pyproject.toml)"
sha="$(git rev-parse --short HEAD 2>/dev/null || echo nogit)"
case "$WHEELHOUSE" in
    ""|0|1) ;;
    *) log "WHEELHOUSE=$WHEELHOUSE: use 1 (the offline wheelhouse), 0 (never) or leave it unset"; exit 2 ;;
esac
if [ -n "${IMAGE_TAG:-}" ]; then
    if ! printf '%s' "$IMAGE_TAG" | grep -Eq '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$'; then
        log "IMAGE_TAG='$IMAGE_TAG' is not a Docker tag: use at most 128 letters, digits, '_', '.'" \
            "and '-', not starting with '.' or '-'"
        exit 2
    fi
    tag="$IMAGE_TAG"
else
    tag="$version-$sha"
fi
tags_of() { # IMAGE: the -t arguments
    if [ -n "${IMAGE_TAG:-}" ]; then echo "-t $1:$tag"; else echo "-t $1:$tag -t $1:latest"; fi
}

# --- what pip inside the build uses: the host's index settings and CA certificate ---------
pip_config=""
for pip in "python3 -m pip" "pip3" "pip"; do
    if pip_config="$($pip config list 2>/dev/null)"; then break; fi
    pip_config=""
done
pip_setting() { # NAME (pip's option name): the PIP_* variable, else pip's configuration
    local var
    var="PIP_$(printf '%s' "$1" | tr 'a-z-' 'A-Z_')"
    if [ -n "${!var:-}" ]; then printf '%s\n' "${!var}"; return; fi
    printf '%s\n' "$pip_config" | sed -n -E "s/^(global|install)\.$1=['\"](.*)['\"]\$/\1 \2/p" \
        | sort | tail -n 1 | cut -d' ' -f2-
}
mask() { sed -E 's#://[^/@ ]+@#://***@#g'; } # credentials in index URLs stay out of the log

pip_dir_index() {
    rm -rf "$PIP_DIR"
    mkdir -p "$PIP_DIR"
    local index extra="" dropped="" url trusted ca="" from=""
    index="$(pip_setting index-url)"
    for url in $(pip_setting extra-index-url); do
        case "$url" in
            http://*|https://*) extra="$extra $url" ;;
            *) dropped="$dropped $url" ;;   # file:// and paths exist on the host only
        esac
    done
    case "$index" in http://*|https://*|"") ;; *) dropped="$dropped $index"; index="" ;; esac
    trusted="$(pip_setting trusted-host)"
    for var in cert REQUESTS_CA_BUNDLE SSL_CERT_FILE; do
        if [ "$var" = cert ]; then ca="$(pip_setting cert)"; from="PIP_CERT or pip's cert"
        else ca="${!var:-}"; from="$var"; fi
        [ -n "$ca" ] && break
    done
    {
        echo "[global]"
        [ -n "$index" ] && echo "index-url = $index"
        [ -n "$extra" ] && echo "extra-index-url =$extra"
        [ -n "$trusted" ] && echo "trusted-host = $trusted"
        if [ -n "$ca" ] && [ -f "$ca" ]; then
            cp "$ca" "$PIP_DIR/ca.crt"
            chmod 644 "$PIP_DIR/ca.crt"
            echo "cert = /pip/ca.crt"
        fi
    } > "$PIP_DIR/pip.conf"
    chmod 600 "$PIP_DIR/pip.conf"
    local what="pip inside docker build, index ${index:-default}${extra:+, extra$extra}"
    if [ -f "$PIP_DIR/ca.crt" ]; then what="$what, CA certificate from $from ($ca)"
    elif [ -n "$ca" ]; then what="$what, no CA certificate ($from names $ca, which is not a file)"
    fi
    log "dependencies: $(printf '%s' "$what" | mask)"
    [ -z "$dropped" ] || log "not passed into the build (host-local):$(printf '%s' "$dropped" | mask)"
}

pip_dir_wheelhouse() { # WHEELHOUSE_DIR
    rm -rf "$PIP_DIR"
    mkdir -p "$PIP_DIR"
    cp -al "$1" "$PIP_DIR/wheels" 2>/dev/null || cp -R "$1" "$PIP_DIR/wheels"
    rm -f "$PIP_DIR/wheels/.stamp"
    log "dependencies: the host-built wheelhouse $1 (no index)"
}

# Pass the proxy settings of the host: Docker leaves these build arguments out of the history.
proxy_args=()
for var in HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy; do
    if [ -n "${!var:-}" ]; then proxy_args+=(--build-arg "$var"); fi
done

build_log="$(mktemp)"
trap 'rm -f "$build_log"' EXIT
# docker_build IMAGE DOCKERFILE CONTEXT [ARGS...]: quiet, the full log only when it fails;
# returns 75 when pip inside the build could not reach an index.
docker_build() {
    local image="$1" dockerfile="$2" context="$3"
    shift 3
    log "docker build $image:$tag"
    # shellcheck disable=SC2046
    if ! docker build --platform "$PLATFORM" --network host \
            ${proxy_args[@]+"${proxy_args[@]}"} "$@" \
            --label "org.opencontainers.image.version=$version" \
            --label "org.opencontainers.image.revision=$sha" \
            -f "$dockerfile" $(tags_of "$image") "$context" >"$build_log" 2>&1; then
        if grep -q "$UNREACHABLE_MARK" "$build_log"; then
            unreachable="$(grep "$UNREACHABLE_MARK" "$build_log" | tail -n 1 | sed "s/.*$UNREACHABLE_MARK: //")"
            return 75
        fi
        cat "$build_log" >&2
        log "docker build of $image failed"
        exit 1
    fi
    local cached steps
    cached="$(grep -c 'Using cache' "$build_log" || true)"
    steps="$(grep -c '^Step ' "$build_log" || true)"
    step "$image ($cached of $steps steps from the layer cache)"
}

# build_deps_image IMAGE DOCKERFILE WHEELHOUSE_SCRIPT WHEELHOUSE_DIR [ARGS...]: a build that
# installs packages, from the index or (fallback) from the wheelhouse the script makes
build_deps_image() {
    local image="$1" dockerfile="$2" script="$3" wheels="$4" status=0
    shift 4
    if [ "$WHEELHOUSE" != 1 ]; then
        pip_dir_index
        docker_build "$image" "$dockerfile" . "$@" || status=$?
        [ "$status" = 0 ] && return 0
        if [ "$WHEELHOUSE" = 0 ]; then
            cat "$build_log" >&2
            log "pip inside docker build cannot reach a package index ($unreachable)" \
                "and WHEELHOUSE=0: set PIP_INDEX_URL / PIP_CERT, or drop WHEELHOUSE=0"
            exit 1
        fi
        log "pip inside docker build cannot reach a package index ($(printf '%s' "$unreachable" | mask));" \
            "falling back to the host-built wheelhouse ($script)"
    fi
    if ! "$script"; then
        log "$script failed: no wheelhouse to fall back on"; exit 1
    fi
    step "$script"
    pip_dir_wheelhouse "$wheels"
    status=0
    docker_build "$image" "$dockerfile" . "$@" || status=$?
    if [ "$status" != 0 ]; then
        cat "$build_log" >&2
        log "docker build of $image failed"
        exit 1
    fi
}

images/base/ensure-base.sh "$BASE_IMAGE"
step "base image"

# The runtime image first: the role images are its layers plus an entrypoint.
build_deps_image stbench-runtime images/runtime/Dockerfile images/wheelhouse.sh build/wheelhouse \
    --build-arg "BASE_IMAGE=$BASE_IMAGE"
case " $IMAGES " in
    *" orchestrator "*) # a stage the build above made: from the layer cache
        docker_build stbench-orchestrator-runtime images/runtime/Dockerfile . \
            --target orchestrator-runtime --build-arg "BASE_IMAGE=$BASE_IMAGE" ;;
esac
for role in $IMAGES; do
    runtime=stbench-runtime
    [ "$role" = orchestrator ] && runtime=stbench-orchestrator-runtime
    # The role Dockerfiles COPY nothing: their folder is the whole build context.
    docker_build "stbench-$role" "images/$role/Dockerfile" "images/$role" \
        --build-arg "RUNTIME_IMAGE=$runtime:$tag"
done

if [ "${GPU:-0}" = 1 ]; then
    # The runtime's deps stage (its venv without stbench), from the layer cache: torch goes on
    # top of it, so that code changes do not reinstall torch.
    deps_image="$(docker build --platform "$PLATFORM" --network host -q --target deps \
        --build-arg "BASE_IMAGE=$BASE_IMAGE" -f images/runtime/Dockerfile .)"
    log "stbench-trainer-gpu is several GB the first time"
    build_deps_image stbench-trainer-gpu images/trainer-gpu/Dockerfile images/torch-wheels.sh \
        build/wheelhouse-torch --build-arg "DEPS_IMAGE=$deps_image" \
        --build-arg "TRAINER_IMAGE=stbench-trainer:$tag"
    IMAGES="$IMAGES trainer-gpu"
fi

log "done in $((SECONDS - t0))s"
for role in $IMAGES; do
    image="stbench-$role"
    printf '%-34s %6d MB  %s (%s)\n' "$image:$tag" \
        "$(( $(docker image inspect -f '{{.Size}}' "$image:$tag") / 1000000 ))" \
        "$(docker image inspect -f '{{.Os}}/{{.Architecture}}' "$image:$tag")" \
        "$(docker image inspect -f '{{.Id}}' "$image:$tag" | cut -c1-19)"
done
