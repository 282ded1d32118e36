"""stbench's MOBSTER, BO and ASHA against Syne Tune 0.13's, in simulated time.

    .venv/bin/python bench/quality.py [--benchmarks synthetic_curves ...] [--num_seeds 10]

Both sides replay the same curves (the benchmark script's `curve(config, resource)`) with the
same workers and budget, start latency 0, in simulated time that only the simulation
advances (a method's own compute time is free on both sides):

- stbench: `stbench run --backend simulated` (in this process);
- Syne Tune 0.13: bench/st013_runner.py in its own venv (build/st013-venv, created here with
  `pip install 'syne-tune[gpsearchers]==0.13.0' 'numpy<1.27'`: 0.13 needs an old numpy, so it
  never enters stbench's dependencies), with 0.13's own UserBlackboxBackend and Tuner.

Reports normalized regret (best so far minus the optimum, over the median random config's
final value minus the optimum) at 25/50/100 % of the budget: mean over seeds and a 95 %
t-interval, into docs/quality.md. Results are cached under build/quality (delete to rerun).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stbench.analysis.frame import load  # noqa: E402
from stbench.backends.simulated_sources import code_curves  # noqa: E402
from stbench.model.benchmark import Benchmark, load_benchmark  # noqa: E402
from stbench.model.spec import ExperimentSpec  # noqa: E402
from stbench.orchestration.study_runner import plan_study, run_study  # noqa: E402

METHODS = ("MOBSTER", "BO", "ASHA")
CHECKPOINTS = (0.25, 0.5, 1.0)
RANDOM_SEED = 20261130
VENV = ROOT / "build" / "st013-venv"
ST013_PACKAGES = ["syne-tune[gpsearchers]==0.13.0", "numpy<1.27", "scikit-learn", "pandas"]


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run(["python3", "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", *ST013_PACKAGES],
                       check=True)
    return python


def st013_task(benchmark: Benchmark, spec: ExperimentSpec, seeds: list[int]) -> dict:
    raw = yaml.safe_load(benchmark.source.read_text())["config_space"]
    raw.update({k: type(raw[k])(v) for k, v in spec.extra_args.items()})
    return {"benchmark": benchmark.name, "script": str(benchmark.script),
            "config_space": raw, "metric": benchmark.metric, "mode": benchmark.mode,
            "resource_attr": benchmark.resource_attr,
            "max_resource_attr": benchmark.max_resource_attr,
            "max_resource": benchmark.max_resource, "n_workers": spec.n_workers,
            "budget": spec.max_wallclock_time, "methods": list(METHODS), "seeds": seeds,
            "scheduler_seeds": [spec.scheduler_seed(s) for s in seeds]}


def start_st013(benchmark: Benchmark, spec: ExperimentSpec, work: Path) -> tuple[Path, object]:
    out = work / f"st013-{benchmark.name}.json"
    if out.exists():
        return out, None
    task = work / f"st013-{benchmark.name}-task.json"
    task.write_text(json.dumps(st013_task(benchmark, spec, list(spec.seeds))))
    log = open(work / f"st013-{benchmark.name}.log", "w")  # noqa: SIM115
    env = {"SYNETUNE_FOLDER": str(work / "st013-tuner"), "PATH": "/usr/bin:/bin",
           "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([str(ensure_venv()), str(ROOT / "bench" / "st013_runner.py"),
                                str(task), str(out)], stdout=log, stderr=subprocess.STDOUT,
                               env=env)
    return out, process


def study_spec(name: str, args: argparse.Namespace, **fields: object) -> ExperimentSpec:
    return ExperimentSpec(benchmark=name, method=METHODS, backend="simulated",
                          num_seeds=args.num_seeds, random_seed=RANDOM_SEED,
                          max_wallclock_time=args.budget,
                          extra_args=dict(item.split("=", 1) for item in args.set), **fields)


def run_stbench(spec: ExperimentSpec, work: Path) -> ExperimentSpec:
    tag = spec.experiment_tag
    plan = plan_study(replace(spec, resume=(work / "results" / tag).exists()))
    benchmark = plan.benchmark
    run_study(plan, progress_stream=open(work / f"stbench-{benchmark.name}.log", "a"))  # noqa: SIM115
    return plan.spec


def stbench_reports(work: Path, spec: ExperimentSpec, metric: str) -> dict:
    results, _ = load(work / "results", spec.experiment_tag)
    runs: dict = {}
    for (method, seed), frame in results.groupby(["method", "seed"]):
        frame = frame.dropna(subset=[metric])
        runs.setdefault(method, {})[str(seed)] = list(
            zip(frame["wallclock_time"].astype(float), frame[metric].astype(float),
                strict=True))
    return runs


def reference_values(benchmark: Benchmark, observed: list[float]) -> tuple[float, float, str]:
    """(optimum, median random config's final value, where the optimum comes from)."""
    curves = code_curves(benchmark)
    assert curves is not None
    rng = np.random.RandomState(0)
    space = benchmark.config_space
    finals = []
    for _ in range(2000):
        config = {k: (v.sample(random_state=rng) if hasattr(v, "sample") else v)
                  for k, v in space.items()}
        finals.append(curves.curve_rows(config)[-1, 0])
    sign = 1.0 if benchmark.mode == "min" else -1.0
    if benchmark.optimum is not None:
        optimum, source = benchmark.optimum, benchmark.optimum_source or "benchmark YAML"
    else:
        pool = [sign * v for v in finals + observed]
        optimum, source = sign * min(pool), "best of 2000 random configs and every run"
    return optimum, float(np.median(finals)), source


def regret_at(reports: list, budget: float, fraction: float, optimum: float, median: float,
              sign: float) -> float:
    values = [v for t, v in reports if t <= fraction * budget]
    if not values:
        return 1.0
    best = min(sign * v for v in values) * sign
    return max(0.0, sign * (best - optimum) / (sign * (median - optimum)))


def summarize(runs: dict, budget: float, optimum: float, median: float, sign: float) -> dict:
    table = {}
    for method, seeds in runs.items():
        for fraction in CHECKPOINTS:
            values = np.array([regret_at(r, budget, fraction, optimum, median, sign)
                               for r in seeds.values()])
            half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(
                len(values)) if len(values) > 1 else float("nan")
            table[(method, fraction)] = (float(values.mean()), float(half), len(values))
    return table


def markdown(sections: list[str], seconds: float) -> str:
    head = ("# HPO quality: stbench vs Syne Tune 0.13\n\n"
            "Generated by `bench/quality.py` "
            f"({seconds / 60:.0f} min on a shared 2-core machine). **Simulated time** on both "
            "sides: each trial replays the benchmark's `curve(config, resource)` with its "
            "epoch seconds, start latency 0; a method's own compute time is not counted. "
            "Same workers, budget and seeds on both sides.\n\n"
            "Normalized regret = (best so far − optimum) / (median random config − optimum): "
            "0 is the optimum, 1 is a typical random config. Mean over seeds ± half-width of "
            "the 95 % t-interval, at 25 / 50 / 100 % of the budget.\n")
    return head + "\n".join(sections)


def section(benchmark: Benchmark, spec: ExperimentSpec, tables: dict, optimum: float,
            median: float, source: str) -> str:
    lines = [f"\n## {benchmark.name}\n",
             f"{spec.n_workers} workers, {spec.max_wallclock_time:g} s simulated budget, "
             f"{spec.num_seeds} seeds; optimum {optimum:.6g} ({source}); median random "
             f"config {median:.6g}.\n",
             "| method | " + " | ".join(f"{int(f * 100)} %" for f in CHECKPOINTS) + " |",
             "|---|" + "---|" * len(CHECKPOINTS)]
    for method in METHODS:
        for impl in ("stbench", "Syne Tune 0.13"):
            row = tables[impl]
            cells = [f"{row[(method, f)][0]:.4f} ± {row[(method, f)][1]:.4f}"
                     for f in CHECKPOINTS if (method, f) in row]
            lines.append(f"| {method} ({impl}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", nargs="+", default=["synthetic_curves"])
    parser.add_argument("--num_seeds", type=int, default=10)
    parser.add_argument("--budget", type=float, default=None,
                        help="simulated seconds per experiment (default: the benchmark's)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="fixed benchmark values, e.g. epoch_duration=1.0")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "quality")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "quality.md")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    started, sections = time.time(), []
    for name in args.benchmarks:
        benchmark = load_benchmark(name)
        if code_curves(benchmark) is None:
            print(f"skipping {name}: its script defines no curve(config, resource)")
            continue
        tag = f"quality-{name.replace('_', '-')}"
        spec = plan_study(study_spec(name, args, experiment_tag=tag,
                                     results_root=str(args.work / "results"), resume=True)).spec
        benchmark = benchmark.with_fixed_values(spec.extra_args)
        out, process = start_st013(benchmark, spec, args.work)
        spec = run_stbench(spec, args.work)
        if process is not None and process.wait() != 0:
            raise SystemExit(f"Syne Tune 0.13 runner failed, see {args.work}")
        runs = {"stbench": stbench_reports(args.work, spec, benchmark.metric),
                "Syne Tune 0.13": json.loads(out.read_text())["runs"]}
        observed = [v for impl in runs.values() for seeds in impl.values()
                    for r in seeds.values() for _, v in r]
        optimum, median, source = reference_values(benchmark, observed)
        sign = 1.0 if benchmark.mode == "min" else -1.0
        budget = float(spec.max_wallclock_time or 0)
        tables = {impl: summarize(r, budget, optimum, median, sign) for impl, r in runs.items()}
        sections.append(section(benchmark, spec, tables, optimum, median, source))
        print(sections[-1], flush=True)
    args.out.write_text(markdown(sections, time.time() - started))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
