#!/usr/bin/env bash
# The offline fallback of the GPU trainer image (images/build.sh GPU=1, when pip inside
# `docker build` cannot reach an index, or WHEELHOUSE=1): build/wheelhouse-torch/ with
# PyTorch, torchvision and what they need (CUDA runtime libraries as nvidia-* wheels).
#
#   images/torch-wheels.sh
#
# Downloaded by the host's pip, like build/wheelhouse/ (images/wheelhouse.sh), so the host must
# run what the image runs: CPython 3.11 on linux x86_64. The versions are those of stbench's
# `torch` extra (pyproject.toml), pinned in requirements.txt; skipped when that list is
# unchanged and every wheel is there.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=build/wheelhouse-torch
TOOLS_VENV=build/wheelhouse-tools
PYTHON="${PYTHON:-python3}"
log() { echo "torch-wheels: $*" >&2; }

tag="$("$PYTHON" -c 'import platform, sys; print(f"{sys.implementation.name}{sys.version_info[0]}{sys.version_info[1]}-{platform.system().lower()}-{platform.machine()}")' 2>/dev/null || echo "not runnable")"
if [ "$tag" != "cpython311-linux-x86_64" ]; then
    log "the offline torch wheelhouse needs CPython 3.11 on linux x86_64 (what the image runs);" \
        "$PYTHON is $tag"
    exit 1
fi
if [ ! -x "$TOOLS_VENV/bin/pip" ]; then
    "$PYTHON" -m venv "$TOOLS_VENV"
    "$TOOLS_VENV/bin/pip" install --quiet --upgrade pip wheel
fi
lists="$(mktemp -d)"
trap 'rm -rf "$lists"' EXIT
"$PYTHON" images/deps.py lists pyproject.toml "$lists"
mapfile -t wanted < "$lists/torch.txt"
stamp="$(printf '%s\n' "${wanted[@]}" | sha256sum | cut -d' ' -f1)"
if [ -f "$OUT/.stamp" ] && [ "$(cat "$OUT/.stamp")" = "$stamp" ] && [ -f "$OUT/requirements.txt" ]; then
    log "$OUT is up to date; nothing to do"
    exit 0
fi
start=$SECONDS
tmp="$OUT.tmp"
rm -rf "$tmp"
mkdir -p "$tmp"
log "pip download ${wanted[*]} (several GB the first time)"
"$TOOLS_VENV/bin/pip" download --quiet --only-binary=:all: --dest "$tmp" "${wanted[@]}" >&2
find "$tmp" -maxdepth 1 -name '*.whl' -printf '%f\n' \
    | sed -E 's/^([^-]+)-([^-]+)-.*/\1==\2/' | LC_ALL=C sort > "$tmp/requirements.txt"
echo "$stamp" > "$tmp/.stamp"
rm -rf "$OUT"
mv "$tmp" "$OUT"
log "built $OUT in $((SECONDS - start))s: $(grep -c . "$OUT/requirements.txt") wheels, $(du -sh "$OUT" | cut -f1)"
