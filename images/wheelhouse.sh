#!/usr/bin/env bash
# Build the wheelhouse the images install from: build/wheelhouse/
#
#   images/wheelhouse.sh [--force]
#
#   build/wheelhouse/stbench-<version>-py3-none-any.whl   the project itself
#   build/wheelhouse/deps/*.whl                            all its runtime dependencies
#
# Wheels are built on the host with `pip wheel` (linux x86_64, CPython 3.11, like the images)
# because pip inside `docker build` cannot verify TLS here; the image builds install them with
# `pip install --no-index`. Dependencies live in their own folder so that the image layer
# that installs them stays cached while stbench's code changes. pip's cache is reused, so
# a rebuild downloads nothing new; and when pyproject.toml, stbench/ and this script are
# unchanged since the last build (content hash in build/wheelhouse/.stamp) nothing runs.
# No torch: the runtime dependencies do not need it.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=build/wheelhouse
STAMP="$OUT/.stamp"
TOOLS_VENV=build/wheelhouse-tools     # a venv with a recent pip; not part of the wheelhouse
PYTHON="${PYTHON:-python3}"
XGBOOST="${XGBOOST:-cpu}"             # cpu | cuda, see below

log() { echo "wheelhouse: $*" >&2; }

# The images run CPython 3.11 on linux x86_64; wheels built by another interpreter would not fit.
tag="$("$PYTHON" -c 'import platform, sys; print(f"{sys.implementation.name}{sys.version_info[0]}{sys.version_info[1]}-{platform.system().lower()}-{platform.machine()}")')"
if [ "$tag" != "cpython311-linux-x86_64" ]; then
    log "need CPython 3.11 on linux x86_64 to build wheels for the images; $PYTHON is $tag"
    exit 1
fi

content_hash() {
    {
        echo "$tag xgboost=$XGBOOST"
        sha256sum pyproject.toml images/wheelhouse.sh
        # README.md only feeds the long description: edits to it need no rebuild.
        for f in LICENSE setup.py setup.cfg MANIFEST.in; do [ -e "$f" ] && sha256sum "$f"; done
        find stbench -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 \
            | LC_ALL=C sort -z | xargs -0 sha256sum
    } | sha256sum | cut -d' ' -f1
}

want="$(content_hash)"
if [ "${1:-}" != "--force" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
    && ls "$OUT"/stbench-*.whl >/dev/null 2>&1; then
    deps=("$OUT"/deps/*.whl)
    log "$OUT is up to date (${#deps[@]} dependency wheels); nothing to do"
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
mkdir -p "$tmp/deps"

# Build from a clean copy of the sources: setuptools' in-tree build/ folder could otherwise
# carry modules deleted from stbench/ into the wheel.
src="$(mktemp -d)"
trap 'rm -rf "$tmp" "$src"' EXIT
cp -r pyproject.toml stbench "$src/"
for f in README.md LICENSE setup.py setup.cfg MANIFEST.in; do [ -e "$f" ] && cp "$f" "$src/"; done
find "$src" \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +

log "pip wheel (stbench and its runtime dependencies)"
"${pip[@]}" wheel --quiet --wheel-dir "$tmp/deps" "$src" >&2
mv "$tmp"/deps/stbench-*.whl "$tmp/"

# Syne Tune requires `xgboost` (its BORE searchers import it). The `xgboost` wheel on PyPI is
# built with CUDA (230 MB unpacked) and pulls nvidia-nccl-cu12 (470 MB): three times the rest
# of the image. With XGBOOST=cpu (the default) the wheelhouse holds PyPI's CPU-only build
# `xgboost-cpu` (same `xgboost` module, 18 MB) instead, plus an empty wheel named
# `xgboost <version>+cpu` that depends on it, so Syne Tune's requirement resolves and
# `pip check` stays clean. XGBOOST=cuda keeps the CUDA build (for GPU trainer images).
xgb="$(find "$tmp/deps" -maxdepth 1 -name 'xgboost-*.whl' | head -n 1)"
if [ "$XGBOOST" = cpu ] && [ -n "$xgb" ]; then
    xgb_version="$(basename "$xgb" | cut -d- -f2)"
    log "swapping xgboost $xgb_version (CUDA build) for xgboost-cpu $xgb_version"
    "${pip[@]}" download --quiet --no-deps --only-binary=:all: --dest "$tmp/deps" \
        "xgboost-cpu==$xgb_version" >&2
    rm -f "$xgb" "$tmp"/deps/nvidia_nccl_cu12-*.whl
    "$TOOLS_VENV/bin/python" - "$tmp/deps" "$xgb_version" <<'PY'
import base64, hashlib, os, sys, zipfile
dest, version = sys.argv[1], sys.argv[2]
name = f"xgboost-{version}+cpu"
files = {
    f"{name}.dist-info/METADATA": (
        "Metadata-Version: 2.1\nName: xgboost\n"
        f"Version: {version}+cpu\n"
        "Summary: stbench shim: the xgboost module comes from xgboost-cpu (no CUDA, no NCCL)\n"
        f"Requires-Dist: xgboost-cpu=={version}\n"),
    f"{name}.dist-info/WHEEL": (
        "Wheel-Version: 1.0\nGenerator: stbench-wheelhouse\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n"),
}
record = []
for path, text in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
    record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
record.append(f"{name}.dist-info/RECORD,,")
files[f"{name}.dist-info/RECORD"] = "\n".join(record) + "\n"
with zipfile.ZipFile(os.path.join(dest, f"{name}-py3-none-any.whl"), "w") as whl:
    for path, text in files.items():
        info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        whl.writestr(info, text)
PY
fi
if ls "$tmp"/deps/torch-*.whl >/dev/null 2>&1; then
    log "torch is not a runtime dependency but ended up in the wheelhouse"; exit 1
fi
# Freeze the resolved set: the image installs exactly these.
find "$tmp/deps" -maxdepth 1 -name '*.whl' -printf '%f\n' \
    | sed -E 's/^([^-]+)-([^-]+)-.*/\1==\2/' | LC_ALL=C sort > "$tmp/deps/requirements.txt"
echo "$want" > "$tmp/.stamp"

rm -rf "$OUT" "$src"
mv "$tmp" "$OUT"
trap - EXIT
own=("$OUT"/stbench-*.whl)
deps=("$OUT"/deps/*.whl)
log "built $OUT in $((SECONDS - start))s: ${own[0]##*/} + ${#deps[@]} dependency wheels," \
    "$(du -sh "$OUT" | cut -f1)"
