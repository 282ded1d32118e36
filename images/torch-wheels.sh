#!/usr/bin/env bash
# The wheels of the GPU trainer image: build/wheelhouse-torch/ with PyTorch, torchvision and
# what they need (CUDA runtime libraries as nvidia-* wheels), for CPython 3.11 on linux x86_64.
#
#   images/torch-wheels.sh
#
# Downloaded on the host, like build/wheelhouse/ (pip inside `docker build` cannot verify TLS
# here), with the versions of stbench's `torch` extra (pyproject.toml), pinned in
# requirements.txt; skipped when that pin list is unchanged and every wheel is there.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=build/wheelhouse-torch
TOOLS_VENV=build/wheelhouse-tools
PYTHON="${PYTHON:-python3}"
log() { echo "torch-wheels: $*" >&2; }

if [ ! -x "$TOOLS_VENV/bin/pip" ]; then
    "$PYTHON" -m venv "$TOOLS_VENV"
    "$TOOLS_VENV/bin/pip" install --quiet --upgrade pip wheel
fi
mapfile -t wanted < <("$PYTHON" -c '
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["torch"]))')
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
