#!/usr/bin/env bash
# Check the GPU trainer image end to end: one resnet_cifar10 trial under the SageMaker
# contract (`docker run IMAGE train`, hyperparameters in /opt/ml), two epochs on the tiny
# generated CIFAR-10 (no download), then a restart of the same job that must resume from its
# checkpoint. Uses the GPUs when the engine has the NVIDIA runtime, else the CPU.
#
#   images/check-gpu-image.sh [IMAGE]       (default stbench-trainer-gpu:latest)
#
# Prints the trial's [tune-metric] lines and the device it trained on; exits non-zero when
# the image cannot run the trial or the restart does not resume.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE="${1:-stbench-trainer-gpu:latest}"
PY="${PYTHON:-.venv/bin/python}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/opt_ml/input/config" "$work/opt_ml/checkpoints"
"$PY" -m stbench.benchmarks.cifar10_data "$work/data" >/dev/null
write_config() {
    printf '{"stbench_benchmark": "resnet_cifar10", "batch_size": "32", "momentum": "0.9", "weight_decay": "0.0001", "lr": "0.05", "epochs": "%s"}\n' "$1" \
        > "$work/opt_ml/input/config/hyperparameters.json"
}
gpus=()
if docker info --format '{{json .Runtimes}}' | grep -q nvidia; then gpus=(--gpus all); fi
run() {
    docker run --rm --network host "${gpus[@]}" -v "$work/opt_ml:/opt/ml" -v "$work/data:/data" \
        -e STBENCH_DATA_DIR=/data "$IMAGE" train 2>&1
}
echo "check: $IMAGE, ${gpus[*]:-no GPUs (CPU)}"
docker run --rm "${gpus[@]}" --entrypoint python "$IMAGE" -c \
    "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"
write_config 2
first="$(run)"
echo "$first" | grep '\[tune-metric\]'
[ "$(echo "$first" | grep -c '\[tune-metric\]')" = 2 ] || { echo "$first"; echo "check: expected 2 reports"; exit 1; }
write_config 3
second="$(run)"
echo "$second" | grep '\[tune-metric\]'
reports="$(echo "$second" | grep '\[tune-metric\]')"
[ "$(echo "$reports" | wc -l)" = 1 ] && echo "$reports" | grep -q '"epoch": 3' \
    || { echo "$second"; echo "check: the restart did not resume at epoch 3"; exit 1; }
echo "check: OK (trained, checkpointed, resumed)"
