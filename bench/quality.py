"""stbench's MOBSTER, BO and ASHA against Syne Tune 0.13's, in simulated time.

    .venv/bin/python bench/quality.py [--benchmarks synthetic_curves ...] [--num_seeds 10]
    .venv/bin/python bench/quality.py --real_data [--num_trials 50] [--jobs 2]

--real_data compares on the recorded tables of fcnet and NAS-Bench-201 instead (a fixed
number of trials per experiment, paired Wilcoxon tests with Holm's correction; the `[tabular]`
extra must be installed): bench/quality_tables.py. Each part rewrites only its own
generated section of docs/quality.md.

Both sides replay the same curves (the benchmark script's `curve(config, resource)`) with the
same workers and budget, start latency 0, in simulated time that only the simulation
advances (a method's own compute time is free on both sides):

- stbench: `stbench run --backend simulated` (in this process);
- Syne Tune 0.13: bench/st013_runner.py in its own venv (build/st013-venv, created here with
  `pip install 'syne-tune[gpsearchers]==0.13.0' 'numpy<1.27'`: 0.13 needs an old numpy, so it
  never enters stbench's dependencies), with 0.13's own UserBlackboxBackend and Tuner.

Reports regret relative to a random config (best so far minus the optimum, over the median
random config's final value minus the optimum) at 25/50/100 % of the budget: mean over seeds
and a 95 % t-interval, into docs/quality.md. Results are cached under build/quality (delete
to rerun).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import quality_tables  # noqa: E402  (bench/, beside this script)

from stbench.backends.simulated.sources import code_curves  # noqa: E402
from stbench.model.benchmark import Benchmark  # noqa: E402
from stbench.model.catalog import load_benchmark  # noqa: E402
from stbench.model.spec import ExperimentSpec  # noqa: E402
from stbench.orchestration.study_runner import plan_study  # noqa: E402

METHODS = ("MOBSTER", "BO", "ASHA")
CHECKPOINTS = (0.25, 0.5, 1.0)
RANDOM_SEED = 20261130
VENV = ROOT / "build" / "st013-venv"
ST013_PACKAGES = ["syne-tune[gpsearchers]==0.13.0", "numpy<1.27", "scikit-learn", "pandas",
                  "statsmodels"]  # statsmodels: 0.13's KDE (TPE) searcher


# Per-benchmark budget and fixed values, chosen so that every experiment has a few dozen to a
# hundred-odd trials: enough for the GP searchers to act, few enough that Syne Tune 0.13's GP
# (a hyperparameter fit per suggestion) finishes 10 seeds in minutes on a shared 2-core machine.
# --budget / --set override them for every benchmark.
SETTINGS: dict[str, tuple[float, dict[str, str]]] = {
    "synthetic_curves": (60.0, {"epoch_duration": "1.0"}),  # 9 epochs of 1 s
    "hartmann6_curves": (60.0, {"epoch_duration": "0.2"}),  # 27 epochs of 0.2 s
}


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run(["python3", "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", *ST013_PACKAGES],
                       check=True)
    return python


# Syne Tune 0.13's searchers evaluate the config space's midpoint first by default
# (points_to_evaluate=None); stbench's start at random. The first variant starts at random too.
ST013_VARIANTS = {"Syne Tune 0.13": {"points_to_evaluate": []},
                  "Syne Tune 0.13, midpoint first": {}}
VARIANT_FILES = {"Syne Tune 0.13": "random-start", "Syne Tune 0.13, midpoint first": "midpoint"}


def st013_task(benchmark: Benchmark, spec: ExperimentSpec, method: str) -> dict:
    raw = yaml.safe_load(benchmark.source.read_text())["config_space"]
    raw.update({k: type(raw[k])(v) for k, v in spec.extra_args.items()})
    return {"benchmark": benchmark.name, "script": str(benchmark.script),
            "config_space": raw, "metric": benchmark.metric, "mode": benchmark.mode,
            "resource_attr": benchmark.resource_attr,
            "max_resource_attr": benchmark.max_resource_attr,
            "max_resource": benchmark.max_resource, "n_workers": spec.n_workers,
            "budget": spec.max_wallclock_time, "methods": [method], "seeds": list(spec.seeds),
            "scheduler_seeds": [spec.scheduler_seed(s) for s in spec.seeds]}


def start_st013(benchmark: Benchmark, spec: ExperimentSpec, method: str, variant: str,
                work: Path) -> tuple[Path, subprocess.Popen | None]:
    """One runner process per method and variant: they run side by side."""
    name = f"st013-{benchmark.name}-{method}-{VARIANT_FILES[variant]}"
    task = {**st013_task(benchmark, spec, method), **ST013_VARIANTS[variant]}
    out, argv = quality_tables.st013_command(VENV / "bin" / "python", ROOT, task, work, name)
    if argv is None:
        return out, None  # same task already run
    ensure_venv()
    process = subprocess.Popen(argv, env=quality_tables.st013_env(work),
                               stderr=subprocess.STDOUT,
                               stdout=open(work / f"{name}.log", "w"))  # noqa: SIM115
    return out, process


def start_stbench(spec: ExperimentSpec, method: str, work: Path) -> subprocess.Popen | None:
    """`stbench run --backend simulated`, one process per method (its own tag)."""
    tag = f"{spec.experiment_tag}-{method.lower()}"
    folder = work / "results" / tag
    if folder.exists() and all(
            json.loads(m.read_text()).get("status") == "completed"
            for m in folder.glob("*/*/*/metadata.json")):
        return None
    extra = [arg for key, value in spec.extra_args.items() for arg in (f"--{key}", value)]
    command = [str(ROOT / ".venv" / "bin" / "stbench"), "run", "--backend", "simulated",
               "--benchmark", spec.benchmark, "--method", method,
               "--num_seeds", str(spec.num_seeds), "--random_seed", str(spec.random_seed),
               "--max_wallclock_time", str(spec.max_wallclock_time),
               "--experiment_tag", tag, "--results_root", str(work / "results"), *extra]
    if folder.exists():
        command.append("--resume")
    log = open(work / f"stbench-{tag}.log", "w")  # noqa: SIM115
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                            env=quality_tables.stbench_env())


def study_spec(name: str, args: argparse.Namespace, **fields: object) -> ExperimentSpec:
    budget, fixed = SETTINGS.get(name, (None, {}))
    fixed = {**fixed, **dict(item.split("=", 1) for item in args.set)}
    return ExperimentSpec(benchmark=name, method=METHODS, backend="simulated",
                          num_seeds=args.num_seeds, random_seed=RANDOM_SEED,
                          max_wallclock_time=args.budget or budget, extra_args=fixed, **fields)


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
    values = [r[1] for r in reports if r[0] <= fraction * budget]  # (time, value[, trial])
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
            half = float(quality_tables.half_width(values)) if len(values) > 1 else math.nan
            table[(method, fraction)] = (float(values.mean()), float(half), values)
    return table


def markdown(sections: list[str], command: str) -> str:
    head = ("# HPO quality: stbench vs Syne Tune 0.13\n\n"
            "Whether stbench's own BO and MOBSTER (and Syne Tune's ASHA) find configurations as "
            "good as Syne Tune 0.13's: first on the synthetic comparison benchmarks, then on "
            "real recorded data ([fcnet and NAS-Bench-201](#real-data-fcnet-and-nas-bench-201-"
            "benchqualitypy)).\n\n"
            f"Measured on {time.strftime('%Y-%m-%d')}; rewritten by `{command}`. "
            "**Simulated time** on both "
            "sides: each trial replays the benchmark's `curve(config, resource)` with its "
            "epoch seconds, start latency 0; a method's own compute time is not counted. "
            "Same workers, budget and seeds on both sides.\n\n"
            "Regret here is relative to a random config: (best so far − optimum) / (median "
            "random config − optimum), 0 is the optimum, 1 is a typical random config (not the "
            "normalized regret of `stbench results`, which divides by the worst final result: "
            "[glossary.md](glossary.md)). Mean over seeds ± half-width of "
            "the 95 % t-interval, at 25 / 50 / 100 % of the budget; for Syne Tune 0.13, p: "
            "two-sided Mann-Whitney U test against stbench's seeds at that checkpoint.\n")
    return head + "\n".join(sections)


def p_value(ours: dict, theirs: dict, method: str, fraction: float) -> float:
    return float(stats.mannwhitneyu(ours[(method, fraction)][2],
                                    theirs[(method, fraction)][2]).pvalue)


def section(benchmark: Benchmark, spec: ExperimentSpec, tables: dict, optimum: float,
            median: float, source: str) -> str:
    lines = [f"\n## {benchmark.name}\n",
             f"{spec.n_workers} workers, {spec.max_wallclock_time:g} s simulated budget, "
             + "".join(f"{k} = {v}, " for k, v in spec.extra_args.items())
             + f"{spec.num_seeds} seeds; optimum {optimum:.6g} ({source}); median random "
             f"config {median:.6g}.\n",
             "| method | " + " | ".join(f"{int(f * 100)} %" for f in CHECKPOINTS) + " |",
             "|---|" + "---|" * len(CHECKPOINTS)]
    for method in METHODS:
        for impl in ("stbench", *ST013_VARIANTS):
            row, ours = tables[impl], tables["stbench"]
            cells = [f"{row[(method, f)][0]:.4f} ± {row[(method, f)][1]:.4f}"
                     + ("" if impl == "stbench" else f" (p {p_value(ours, row, method, f):.2f})")
                     for f in CHECKPOINTS if (method, f) in row]
            lines.append(f"| {method} ({impl}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


BEGIN, END = "<!-- generated by bench/quality.py -->", "<!-- end of generated part -->"
REAL_BEGIN = "<!-- generated by bench/quality.py --real_data -->"
REAL_END = "<!-- end of the real-data part -->"


def write_keeping_notes(path: Path, generated: str, begin: str = BEGIN,
                        end: str = END) -> None:
    """Replace one generated part of the page; the rest (findings, the other part) is kept.
    A part not on the page yet goes after the first one."""
    text = path.read_text() if path.exists() else ""
    block = f"{begin}\n{generated}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    elif END in text:
        head, rest = text.split(END, 1)
        text = f"{head}{END}\n\n{block}{rest}"
    else:
        text = block + text
    path.write_text(text)


def real_data(args: argparse.Namespace) -> None:
    """The recorded tables: both sides run, the section and its plot written."""
    specs, benchmarks = {}, {}
    for name in quality_tables.TABLES:
        tag = f"quality-{name.replace('_', '-')}-{args.num_trials}"
        spec = ExperimentSpec(benchmark=name, method=quality_tables.METHODS,
                              backend="simulated", num_seeds=args.num_seeds,
                              random_seed=RANDOM_SEED, max_num_trials=args.num_trials,
                              max_wallclock_time=quality_tables.UNLIMITED, experiment_tag=tag,
                              results_root=str(args.work / "plan"))
        specs[name] = plan_study(spec).spec
        benchmarks[name] = load_benchmark(name)
    results = quality_tables.run_tables(
        list(quality_tables.TABLES), specs, benchmarks, args.work, ROOT, ensure_venv(),
        args.num_trials, args.jobs)
    image = args.out.parent / "img" / "quality-real-data.png"
    quality_tables.plot(results, args.num_trials, image)
    command = " ".join([".venv/bin/python bench/quality.py", *sys.argv[1:]])
    text = quality_tables.section(results, args.num_trials, command,
                                  str(image.relative_to(args.out.parent)))
    print(text, flush=True)
    write_keeping_notes(args.out, text, REAL_BEGIN, REAL_END)
    print(f"wrote {args.out} and {image}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", nargs="+", default=list(SETTINGS))
    parser.add_argument("--num_seeds", type=int, default=10)
    parser.add_argument("--budget", type=float, default=None,
                        help="simulated seconds per experiment (default: SETTINGS, else "
                        "the benchmark's)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="fixed benchmark values on top of SETTINGS, e.g. "
                        "epoch_duration=1.0")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "quality")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "quality.md")
    parser.add_argument("--real_data", action="store_true",
                        help="compare on fcnet's and NAS-Bench-201's recorded tables instead")
    parser.add_argument("--num_trials", type=int, default=quality_tables.NUM_TRIALS,
                        help="trials per experiment with --real_data")
    parser.add_argument("--jobs", type=int, default=2,
                        help="runs at once with --real_data (each one process)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.real_data:
        real_data(args)
        return
    sections = []
    for name in args.benchmarks:
        benchmark = load_benchmark(name)
        if code_curves(benchmark) is None:
            print(f"skipping {name}: its script defines no curve(config, resource)")
            continue
        tag = f"quality-{name.replace('_', '-')}"
        spec = plan_study(study_spec(name, args, experiment_tag=tag,
                                     results_root=str(args.work / "plan"))).spec
        benchmark = benchmark.with_fixed_values(spec.extra_args)
        outs, processes = {}, []
        for method in METHODS:
            for variant in ST013_VARIANTS:
                outs[variant, method], process = start_st013(benchmark, spec, method, variant,
                                                             args.work)
                processes += [process] if process else []
            process = start_stbench(spec, method, args.work)
            processes += [process] if process else []
        if any(process.wait() != 0 for process in processes):
            raise SystemExit(f"a run failed, see the logs in {args.work}")
        runs = {"stbench": quality_tables.stbench_reports(args.work, spec, benchmark.metric,
                                                          METHODS)}
        for (variant, method), out in outs.items():
            runs.setdefault(variant, {})[method] = json.loads(out.read_text())["runs"][method]
        observed = [report[1] for impl in runs.values() for seeds in impl.values()
                    for r in seeds.values() for report in r]
        optimum, median, source = reference_values(benchmark, observed)
        sign = 1.0 if benchmark.mode == "min" else -1.0
        budget = float(spec.max_wallclock_time or 0)
        tables = {impl: summarize(r, budget, optimum, median, sign) for impl, r in runs.items()}
        sections.append(section(benchmark, spec, tables, optimum, median, source))
        print(sections[-1], flush=True)
    command = " ".join([".venv/bin/python bench/quality.py", *sys.argv[1:]])
    write_keeping_notes(args.out, markdown(sections, command))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
