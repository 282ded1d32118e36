"""Does `--backend simulated` agree with a real study? Best-so-far of ASHA over seeds.

    .venv/bin/python bench/simulated_check.py --results_root R --real TAG --sim TAG [TAG ...]
        [--tolerance 0.005] [--plot docs/img/simulated-check.png]

Every study must hold the same benchmark, method and seeds, run with the same --random_seed
(so seed s of every study starts from the same scheduler seed). For each simulated study it
prints the mean best-so-far at 25/50/100 % of the budget next to the real one, and the mean
paired difference (simulated minus real, per seed) with its 95 % t-interval; a study agrees
when every checkpoint's |mean difference| is within the tolerance. The plot shows the mean
best-so-far over time of every study.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stbench.analysis.frame import load  # noqa: E402

CHECKPOINTS = (0.25, 0.5, 1.0)


def best_so_far(root: Path, tag: str, grid: np.ndarray) -> tuple[np.ndarray, list[int], str]:
    """(seeds x grid) best-so-far of the metric (minimized), the seeds, the metric's name."""
    results, experiments = load(root, tag)
    metric = str(experiments["metric"].iloc[0])
    sign = 1.0 if experiments["mode"].iloc[0] == "min" else -1.0
    curves, seeds = [], []
    for seed, frame in results.dropna(subset=[metric]).groupby("seed"):
        frame = frame.sort_values("wallclock_time")
        best = np.minimum.accumulate(sign * frame[metric].to_numpy(float)) * sign
        index = np.searchsorted(frame["wallclock_time"].to_numpy(float), grid, side="right")
        curves.append(np.where(index > 0, best[np.maximum(index - 1, 0)], np.nan))
        seeds.append(int(seed))
    return np.array(curves), seeds, metric


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results_root", type=Path, required=True)
    parser.add_argument("--real", required=True)
    parser.add_argument("--sim", nargs="+", required=True)
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--tolerance", type=float, default=0.005)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    grid = np.linspace(0.5, args.budget, 120)
    checkpoints = np.array([f * args.budget for f in CHECKPOINTS])
    real, real_seeds, metric = best_so_far(args.results_root, args.real, grid)
    real_at, _, _ = best_so_far(args.results_root, args.real, checkpoints)
    print(f"real {args.real}: {len(real_seeds)} seeds; mean best {metric} at "
          + ", ".join(f"{int(f * 100)} %: {v:.4f}" for f, v in zip(
              CHECKPOINTS, np.nanmean(real_at, axis=0), strict=True)))
    figure, axes = plt.subplots(figsize=(6.4, 4))
    axes.plot(grid, np.nanmean(real, axis=0), label=f"real ({args.real})", color="black")
    verdicts = []
    for tag in args.sim:
        sim, seeds, _ = best_so_far(args.results_root, tag, grid)
        sim_at, _, _ = best_so_far(args.results_root, tag, checkpoints)
        assert seeds == real_seeds, f"{tag} has seeds {seeds}, the real study {real_seeds}"
        diff = sim_at - real_at
        mean, sd = np.nanmean(diff, axis=0), np.nanstd(diff, axis=0, ddof=1)
        half = stats.t.ppf(0.975, len(seeds) - 1) * sd / np.sqrt(len(seeds))
        agrees = bool(np.all(np.abs(mean) <= args.tolerance))
        verdicts.append(agrees)
        print(f"simulated {tag}: mean best at " + ", ".join(
            f"{int(f * 100)} %: {v:.4f} (diff {d:+.4f} ± {h:.4f})" for f, v, d, h in zip(
                CHECKPOINTS, np.nanmean(sim_at, axis=0), mean, half, strict=True))
            + f" -> {'agrees' if agrees else 'DISAGREES'} within {args.tolerance:g}")
        axes.plot(grid, np.nanmean(sim, axis=0), label=f"simulated ({tag})", linestyle="--")
    axes.set_xlabel("wall-clock time (s; simulated for the simulated studies)")
    axes.set_ylabel(f"best {metric} so far, mean over {len(real_seeds)} seeds")
    axes.set_yscale("log")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    if args.plot:
        figure.savefig(args.plot, dpi=110)
        print(f"plot: {args.plot}")
    raise SystemExit(0 if all(verdicts) else 1)


if __name__ == "__main__":
    main()
