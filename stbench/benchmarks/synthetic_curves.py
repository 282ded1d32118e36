"""Synthetic learning curves: cheap, controllable trials for testing the orchestration.

The final loss has a known minimum (x = 1, log_lr = -2.5, width large); curves decay
exponentially with epochs at a config-dependent rate. A Syne Tune style script: arguments in,
`[tune-metric]` lines out.

Faults for reliability tests: `failure_probability` raises an exception at a random epoch,
`kill_probability` has the process SIGKILL itself mid-epoch (what the kernel's OOM killer
does). Both are drawn from the trial's hyperparameters, each with a generator of its own, so
the same config fails the same way on every back-end and run.
"""

import argparse
import hashlib
import json
import math
import os
import signal
import time
from pathlib import Path

import numpy as np
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


def fault_epochs(args: argparse.Namespace) -> tuple[int | None, int | None]:
    """(epoch that raises, epoch that SIGKILLs), None for no fault: drawn from the trial's
    own values, the two draws from independent children of one SeedSequence."""
    digest = hashlib.sha256(json.dumps(vars(args), sort_keys=True).encode()).digest()
    failing, killing = (np.random.default_rng(child) for child in
                        np.random.SeedSequence(int.from_bytes(digest[:16], "big")).spawn(2))
    faults = []
    for rng, probability in ((failing, args.failure_probability),
                             (killing, args.kill_probability)):
        hit = rng.random() < probability
        epoch = int(rng.integers(1, args.epochs + 1))
        faults.append(epoch if hit else None)
    return faults[0], faults[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--x", type=float, required=True)
    parser.add_argument("--log_lr", type=float, required=True)
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--epoch_duration", type=float, default=0.1)
    parser.add_argument("--failure_probability", type=float, default=0.0)
    parser.add_argument("--kill_probability", type=float, default=0.0)
    args, _ = parser.parse_known_args()

    cache_hit = warm_cache_hit()
    report = Reporter()
    fail_at, kill_at = fault_epochs(args)
    for epoch in range(1, args.epochs + 1):
        if epoch == kill_at:  # mid-epoch, as an OOM kill would come
            time.sleep(args.epoch_duration / 2)
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(args.epoch_duration)  # one sleep: each overshoots, under load by ms
        if epoch == fail_at:
            raise RuntimeError(f"injected failure at epoch {epoch}")
        report(epoch=epoch, loss=loss_at(epoch, args.x, args.log_lr, args.width),
               cache_hit=cache_hit)


if __name__ == "__main__":
    main()
