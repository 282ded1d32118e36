#!/usr/bin/env bash
# The offline fallback of the image builds: a wheelhouse of stbench's runtime dependencies,
# built on the host, that images/build.sh installs with `pip install --no-index` when pip
# inside `docker build` cannot reach a package index (or with WHEELHOUSE=1).
#
#   images/wheelhouse.sh [--force]
#
#   build/wheelhouse/*.whl, requirements.txt   the dependencies, and the frozen set to install
#   build/wheelhouse/build-tools/*.whl         what building stbench's own wheel needs
#                                              (pyproject.toml's build-system.requires)
#
# Wheels are built by the host's pip (its index, cache and settings), so the host must run
# what the images run: CPython 3.11 on linux x86_64. pip's cache is reused, so a rebuild
# downloads nothing new; and when pyproject.toml and the scripts are unchanged since the last
# build (content hash in build/wheelhouse.stamp) nothing runs. No torch: the runtime
# dependencies do not need it. xgboost: the CPU-only build, as images/deps.py explains.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=build/wheelhouse
STAMP=build/wheelhouse.stamp
TOOLS_VENV=build/wheelhouse-tools     # a venv with a recent pip; not part of the wheelhouse
PYTHON="${PYTHON:-python3}"
XGBOOST="${XGBOOST:-cpu}"             # cpu | cuda (the PyPI build, with NCCL)

log() { echo "wheelhouse: $*" >&2; }

# The images run CPython 3.11 on linux x86_64; wheels built by another interpreter would not fit.
tag="$("$PYTHON" -c 'import platform, sys; print(f"{sys.implementation.name}{sys.version_info[0]}{sys.version_info[1]}-{platform.system().lower()}-{platform.machine()}")' 2>/dev/null || echo "not runnable")"
if [ "$tag" != "cpython311-linux-x86_64" ]; then
    log "the offline wheelhouse needs CPython 3.11 on linux x86_64 (what the images run);" \
        "$PYTHON is $tag. Without it, build where pip inside docker build reaches an index" \
        "(PIP_INDEX_URL, PIP_CERT)"
    exit 1
fi

content_hash() {
    {
        echo "$tag xgboost=$XGBOOST"
        sha256sum pyproject.toml images/wheelhouse.sh images/deps.py
    } | sha256sum | cut -d' ' -f1
}

want="$(content_hash)"
if [ "${1:-}" != "--force" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
    && [ -f "$OUT/requirements.txt" ]; then
    log "$OUT is up to date ($(grep -c . "$OUT/requirements.txt") wheels); nothing to do"
    exit 0
fi

start=$SECONDS
if [ ! -x "$TOOLS_VENV/bin/pip" ]; then
    log "creating $TOOLS_VENV"
    "$PYTHON" -m venv "$TOOLS_VENV"
    "$TOOLS_VENV/bin/pip" install --quiet --upgrade pip wheel
fi
pip=("$TOOLS_VENV/bin/pip")

# Build into a fresh folder, then swap it in: no stale wheels from an earlier dependency set.
tmp="$OUT.tmp"
rm -rf "$tmp"
mkdir -p "$tmp/build-tools"
lists="$(mktemp -d)"
trap 'rm -rf "$tmp" "$lists"' EXIT
"$PYTHON" images/deps.py lists pyproject.toml "$lists"

log "pip wheel (stbench's runtime dependencies)"
"${pip[@]}" wheel --quiet --wheel-dir "$tmp" -r "$lists/requirements.txt" >&2
"${pip[@]}" download --quiet --only-binary=:all: --dest "$tmp/build-tools" \
    -r "$lists/build-requirements.txt" >&2

xgb="$(find "$tmp" -maxdepth 1 -name 'xgboost-*.whl' | head -n 1)"
if [ "$XGBOOST" = cpu ] && [ -n "$xgb" ]; then
    xgb_version="$(basename "$xgb" | cut -d- -f2)"
    log "swapping xgboost $xgb_version (CUDA build) for xgboost-cpu $xgb_version"
    "${pip[@]}" download --quiet --no-deps --only-binary=:all: --dest "$tmp" \
        "xgboost-cpu==$xgb_version" >&2
    rm -f "$xgb" "$tmp"/nvidia_nccl_cu12-*.whl
    "$PYTHON" images/deps.py xgboost-shim "$tmp" "$xgb_version"
fi
if ls "$tmp"/torch-*.whl >/dev/null 2>&1; then
    log "torch is not a runtime dependency but ended up in the wheelhouse"; exit 1
fi
# Freeze the resolved set: the image installs exactly these.
find "$tmp" -maxdepth 1 -name '*.whl' -printf '%f\n' \
    | sed -E 's/^([^-]+)-([^-]+)-.*/\1==\2/' | LC_ALL=C sort > "$tmp/requirements.txt"

rm -rf "$OUT" "$lists"
mv "$tmp" "$OUT"
echo "$want" > "$STAMP"
trap - EXIT
log "built $OUT in $((SECONDS - start))s: $(grep -c . "$OUT/requirements.txt") wheels," \
    "$(du -sh "$OUT" | cut -f1)"
