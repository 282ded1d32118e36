"""Synthetic learning curves: cheap, controllable trials for testing the orchestration.

The final loss has a known minimum (x = 1, log_lr = -2.5, width large); curves decay
exponentially with epochs at a config-dependent rate. A Syne Tune style script: arguments in,
`[tune-metric]` lines out.
"""

import argparse
import math
import os
import random
import time
from pathlib import Path

from syne_tune import Reporter


def final_loss(x: float, log_lr: float, width: int) -> float:
    return 0.1 + 0.05 * (x - 1.0) ** 2 + 0.04 * (log_lr + 2.5) ** 2 + 1.0 / (width + 4)


def loss_at(epoch: int, x: float, log_lr: float, width: int) -> float:
    rate = 0.15 + 0.6 * math.exp(-abs(log_lr + 2.0))
    return final_loss(x, log_lr, width) + 1.5 * math.exp(-rate * epoch)


def curve(config: dict, resource: int) -> dict:
    """What the script reports after `resource` epochs: `--backend simulated` replays it
    (seconds per epoch: the config's `epoch_duration`), see docs/simulated.md."""
    return {"loss": loss_at(resource, float(config["x"]), float(config["log_lr"]),
                            int(config["width"]))}


def warm_cache_hit() -> int:
    """1 if an earlier trial on this instance left its "dataset" in the warm-pool cache.

    Stands in for a real dataset download: the first trial on an instance writes it, trials
    that reuse a warm pool find it.
    """
    cache = os.environ.get("SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY")
    if not cache:
        return 0
    marker = Path(cache) / "synthetic_curves.dataset"
    if marker.is_file():
        return 1
    marker.write_text("prepared once per instance\n")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--x", type=float, required=True)
    parser.add_argument("--log_lr", type=float, required=True)
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--epoch_duration", type=float, default=0.1)
    parser.add_argument("--failure_probability", type=float, default=0.0)
    args, _ = parser.parse_known_args()

    cache_hit = warm_cache_hit()
    report = Reporter()
    fail_at = None
    if random.random() < args.failure_probability:
        fail_at = random.randint(1, args.epochs)
    for epoch in range(1, args.epochs + 1):
        time.sleep(args.epoch_duration)
        if epoch == fail_at:
            raise RuntimeError(f"injected failure at epoch {epoch}")
        report(epoch=epoch, loss=loss_at(epoch, args.x, args.log_lr, args.width),
               cache_hit=cache_hit)


if __name__ == "__main__":
    main()
