#!/usr/bin/env bash
# The GPU check of resnet_cifar10, as one prepared run on a machine with a CUDA GPU
# and PyTorch but no package registry (DESIGN.md: the stbench package from PYTHONPATH, Syne
# Tune and dill from wheels). Ends well inside 10 minutes on an H200:
#   1. the CUDA test of tests/unit/test_resnet_cifar10.py (trains with bf16 and with fp16 and
#      a gradient scaler, checkpoints and resumes on the GPU; the others run in CI), at most
#      120 s;
#   2. bench/gpu_epoch.py --write at CIFAR-10's size (45,000/5,000 generated images, batch
#      128, 3 epochs, up to 3 rounds of repeats), at most 380 s; a round cut off by the limit
#      is dropped and the table of the finished rounds stays.
#
#   bench/gpu_check.sh wheels    # first, on a machine with PyPI: wheels into build/gpu-wheels
#   bench/gpu_check.sh           # then on the GPU machine (carry build/gpu-wheels there)
#
# Writes tests.log, gpu_epoch.log, gpu_section.md (the new GPU section of docs/performance.md)
# into $OUT (default build/gpu-check). Apply the section in the checkout with
#   (cd bench && python -c 'import sys, docs_section as d; d.write_section(d.PERFORMANCE_DOC, open(sys.argv[1]).read())' PATH/gpu_section.md)
# Exits non-zero when a test failed or the bench did not finish one round.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
WHEELS=build/gpu-wheels

if [ "${1:-}" = wheels ]; then  # the versions this checkout's venv runs, pure-Python wheels
    versions="$(.venv/bin/python -c 'import importlib.metadata as m; print(" ".join(f"{n}=={m.version(n)}" for n in ("syne-tune", "dill")))')"
    # shellcheck disable=SC2086
    .venv/bin/python -m pip download -q --no-deps --only-binary=:all: -d "$WHEELS" $versions
    ls -l "$WHEELS"
    exit $?
fi

out="${OUT:-build/gpu-check}"
mkdir -p "$out"
if ! "$PY" -c "import syne_tune, dill" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/stbench-site "$WHEELS"/*.whl || exit 1
    export PYTHONPATH=/tmp/stbench-site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

timeout 120 "$PY" -m pytest -q -p no:cacheprovider tests/unit/test_resnet_cifar10.py -k cuda \
    2>&1 | tee "$out/tests.log"
tests=$?
timeout 380 "$PY" bench/gpu_epoch.py --write --repeats 3 --epochs 3 > "$out/gpu_epoch.log" 2>&1
bench=$?
cat "$out/gpu_epoch.log"
awk '/^## resnet_cifar10 epochs on a GPU/ {p = 1; print; next} /^## / {p = 0} p' \
    docs/performance.md > "$out/gpu_section.md"
echo "gpu_check: tests exit $tests, bench exit $bench (124: cut at its time limit)"
grep -q '^| fp32 NCHW' "$out/gpu_section.md" || { echo "gpu_check: no GPU table"; exit 1; }
[ "$tests" = 0 ]
