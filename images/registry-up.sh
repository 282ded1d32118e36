#!/usr/bin/env bash
# Bring up a local image registry on 127.0.0.1 for `make push REGISTRY=...`; idempotent.
#
#   images/registry-up.sh [PORT]        (default 5000; prints the registry's address)
#
# The local SageMaker endpoint (`stbench emulator`) pulls trainer and orchestrator images
# from a loopback registry, as SageMaker pulls from ECR. This is Debian's `docker-registry`
# (distribution 2.8; installed with apt-get when missing, as root), serving only on
# 127.0.0.1, storing under build/registry/, logging to build/registry/registry.log. The
# Docker engine treats 127.0.0.0/8 registries as insecure, so no TLS is needed.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${1:-5000}"
ADDRESS="127.0.0.1:${PORT}"
ROOT="$PWD/build/registry"
log() { echo "registry-up: $*" >&2; }

answers() { curl -sf --noproxy '*' "http://${ADDRESS}/v2/" >/dev/null 2>&1; }

if answers; then
    echo "${ADDRESS}"
    exit 0
fi
if [ ! -x /usr/bin/docker-registry ]; then
    log "apt-get install docker-registry"
    as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null
fi
mkdir -p "${ROOT}/data"
cat > "${ROOT}/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: ${ROOT}/data
http:
  addr: ${ADDRESS}
YAML
nohup /usr/bin/docker-registry serve "${ROOT}/config.yml" >"${ROOT}/registry.log" 2>&1 &
for _ in $(seq 1 100); do
    if answers; then
        log "serving on ${ADDRESS} (data in ${ROOT}/data)"
        echo "${ADDRESS}"
        exit 0
    fi
    sleep 0.2
done
log "docker-registry did not answer on ${ADDRESS}; see ${ROOT}/registry.log"
exit 1
