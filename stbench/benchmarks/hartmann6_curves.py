"""Multi-fidelity Hartmann-6 learning curves: a cheap benchmark with a known optimum.

The loss after the last epoch is the Hartmann-6 function (minimum -3.32237 at
x = (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)). Earlier epochs add two
realistic distortions, both of which vanish at the last epoch:

- a transient that decays at a config-dependent rate (x1 sets it), so slow starters look
  worse than they are early on;
- a gap shared by all configs that closes linearly, so that a lucky noisy report at an
  intermediate epoch of a near-optimal config rarely beats the optimum (best-so-far curves
  stay within about 0.01 of it, and regret stays meaningful);
- the bump that holds the global minimum is shallower at low fidelity (its weight drops from
  3.2 to 2.8 at epoch 0), so early rankings favour the runner-up bump and a scheduler that
  trusts low rungs too much is misled.

Every report is at least the global minimum before noise. The noise is Gaussian, larger early
on, and a pure function of (config, epoch): the same config reports the same curve in every
trial, so a simulated back-end can import :func:`observed_loss` (or :func:`noise_free_loss`
and :func:`noise_sd`) and reproduce a real run's curves exactly, without the sleeps.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from syne_tune import Reporter

DEFAULT_EPOCHS = 27
ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
# How much each bump's weight drops at epoch 0 (linearly less until the last epoch).
LOW_FIDELITY_DROP = np.array([0.0, 0.0, 0.0, 0.4])
A = np.array(
    [
        [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
        [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
        [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
        [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
    ]
)
P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
TRANSIENT = 0.6
FIDELITY_GAP = 0.5
FINAL_NOISE_SD = 0.005
EARLY_NOISE_SD = 0.08
NAMES = tuple(f"x{i}" for i in range(1, 7))


def hartmann6(x: np.ndarray, alpha: np.ndarray = ALPHA) -> float:
    """The standard Hartmann-6 function on [0, 1]^6 (with the given bump weights)."""
    inner = np.sum(A * (x[None, :] - P) ** 2, axis=1)
    return float(-np.sum(alpha * np.exp(-inner)))


def _point(config: Mapping[str, Any]) -> np.ndarray:
    return np.array([float(config[name]) for name in NAMES])


def _fidelity(config: Mapping[str, Any], epoch: int) -> float:
    epochs = int(config.get("epochs", DEFAULT_EPOCHS))
    return min(epoch / epochs, 1.0)


def noise_free_loss(config: Mapping[str, Any], epoch: int) -> float:
    """The loss a config reports after ``epoch`` epochs, before noise (see the module doc)."""
    x = _point(config)
    fidelity = _fidelity(config, epoch)
    alpha = ALPHA - (1.0 - fidelity) * LOW_FIDELITY_DROP
    rate = 0.05 + 0.4 * x[0]
    transient = TRANSIENT * (1.0 - fidelity) * math.exp(-rate * epoch)
    return hartmann6(x, alpha) + transient + FIDELITY_GAP * (1.0 - fidelity)


def noise_sd(config: Mapping[str, Any], epoch: int) -> float:
    """Standard deviation of the report noise: shrinks linearly to its final value."""
    fidelity = _fidelity(config, epoch)
    return FINAL_NOISE_SD + (EARLY_NOISE_SD - FINAL_NOISE_SD) * (1.0 - fidelity)


def _noise_seed(config: Mapping[str, Any], epoch: int) -> np.random.SeedSequence:
    """A seed derived from the config's values, so noise is reproducible per (config, epoch)."""
    text = json.dumps([round(float(config[n]), 12) for n in NAMES])
    entropy = int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "little")
    return np.random.SeedSequence(entropy, spawn_key=(epoch,))


def observed_loss(config: Mapping[str, Any], epoch: int) -> float:
    """What the script reports: the noise-free loss plus reproducible Gaussian noise."""
    rng = np.random.default_rng(_noise_seed(config, epoch))
    return noise_free_loss(config, epoch) + noise_sd(config, epoch) * float(rng.standard_normal())


def curve(config: Mapping[str, Any], resource: int) -> dict[str, float]:
    """What the script reports after `resource` epochs: `--backend simulated` replays it
    (seconds per epoch: the config's `epoch_duration`), see docs/simulated.md."""
    return {"loss": observed_loss(config, resource)}


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in NAMES:
        parser.add_argument(f"--{name}", type=float, required=True)
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--epoch_duration", type=float, default=0.2)
    args, _ = parser.parse_known_args()
    config = vars(args)
    report = Reporter()
    for epoch in range(1, args.epochs + 1):
        time.sleep(args.epoch_duration)
        report(epoch=epoch, loss=observed_loss(config, epoch),
               noise_free_loss=noise_free_loss(config, epoch))


if __name__ == "__main__":
    main()
