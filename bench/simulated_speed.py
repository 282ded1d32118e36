"""How long a 30-seed simulated study takes, against the code before its speed-up (the
anchor) and, per experiment, against Syne Tune 0.16's own simulator; and whether the anchor
and this code give the same results.

    .venv/bin/python bench/simulated_speed.py [--num_seeds 30] [--repeats 3] [--write]

1. Records once (cached under build/simulated-speed/): a real synthetic_curves ASHA study on
   local processes, 2 seeds, 30 s each (about a minute).
2. Runs `stbench run --backend simulated --from_study <tag> --method ASHA MOBSTER BO RS
   --num_seeds N --jobs <CPUs>` with the anchor's code (a git worktree of commit ANCHOR under
   build/) and with this checkout's, alternating, `--repeats` times each: wall and CPU time
   of the command and its workers, and the load average around each.
3. Compares the result frames of the two: every results.jsonl row (simulated time included)
   and each experiment's trials, best value and status.
4. Times single experiments in one process (one BLAS thread, as the study runs them), seed by
   seed: each method with the anchor's and this code, and ASHA and RS also through Syne Tune
   0.16's Tuner with its UserBlackboxBackend and SimulatorCallback on the same blackbox.
5. Prints a table; `--write` puts it into docs/performance.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docs_section import anchor_tree, publish  # noqa: E402  (this folder)

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "simulated-speed"
RESULTS = WORK / "results"
ANCHOR = "e04a698"  # main before the GP and loop speed-ups
RECORDED = "speed-recorded"
STBENCH = ["-m", "stbench.cli.main", "run"]
RECORD = [sys.executable, *STBENCH, "--benchmark", "synthetic_curves", "--method", "ASHA",
          "--num_seeds", "2", "--random_seed", "7", "--experiment_tag", RECORDED,
          "--results_root", str(RESULTS)]
SECTION = "## Speed of a 30-seed simulated study (bench/simulated_speed.py)"
SYNE_TUNE_METHODS = ("ASHA", "RS")


@dataclass(frozen=True)
class Timing:
    code: str  # "anchor" or "this"
    wall: float
    cpu: float  # user + system of the command and its worker processes
    load_before: float
    load_after: float


def record_once() -> None:
    """A real study to replay; reused while all its experiments are complete."""
    metadata = sorted((RESULTS / RECORDED).glob("*/*/*/metadata.json"))
    if len(metadata) == 2 and all(json.loads(p.read_text()).get("status") == "completed"
                                  for p in metadata):
        return
    shutil.rmtree(RESULTS / RECORDED, ignore_errors=True)
    print("recording the study to replay", flush=True)
    run_quietly(RECORD, ROOT)


def run_quietly(command: list[str], cwd: Path) -> str:
    """Progress lines go to a pipe; they are shown only when the command fails."""
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def study_command(tag: str, args: argparse.Namespace) -> list[str]:
    return [*STBENCH, "--backend", "simulated", "--from_study", RECORDED, "--method",
            *args.methods, "--num_seeds", str(args.num_seeds), "--random_seed",
            str(args.random_seed), "--experiment_tag", tag, "--results_root", str(RESULTS),
            "--jobs", str(args.jobs)]


def run_study(code: str, args: argparse.Namespace) -> Timing:
    """The whole study with `code`'s stbench (run from its tree, so that tree's package and
    its spawned workers' imports are that code's)."""
    tag = f"speed-{code}"
    shutil.rmtree(RESULTS / tag, ignore_errors=True)
    cwd = anchor_tree(WORK, ANCHOR) if code == "anchor" else ROOT
    load_before = os.getloadavg()[0]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    run_quietly([sys.executable, *study_command(tag, args)], cwd)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    print(f"study with the {code} code: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
    return Timing(code, wall, cpu, load_before, os.getloadavg()[0])


def result_frame(tag: str) -> dict[str, Any]:
    """Per experiment: its rows as written, and its outcome in metadata.json."""
    out: dict[str, Any] = {}
    for path in sorted((RESULTS / tag).glob("*/*/*/results.jsonl")):
        meta = json.loads((path.parent / "metadata.json").read_text())
        out[str(path.parent.relative_to(RESULTS / tag))] = (
            path.read_text(), {k: meta.get(k) for k in ("status", "trials", "failures", "best")})
    return out


def compare(anchor: dict[str, Any], this: dict[str, Any]) -> tuple[int, list[str]]:
    """How many experiments are identical, and what differs in the others."""
    same, notes = 0, []
    for key in sorted(set(anchor) | set(this)):
        if anchor.get(key) == this.get(key):
            same += 1
            continue
        if key not in anchor or key not in this:
            notes.append(f"{key}: only in {'this' if key in this else 'the anchor'}")
            continue
        rows_a, rows_b = anchor[key][0].splitlines(), this[key][0].splitlines()
        first = next((i for i, (a, b) in enumerate(zip(rows_a, rows_b, strict=False))
                      if a != b), min(len(rows_a), len(rows_b)))
        notes.append(f"{key}: rows differ from row {first} ({len(rows_a)} vs {len(rows_b)}"
                     f" rows); outcome {anchor[key][1]} vs {this[key][1]}")
    return same, notes


# --- single experiments, in one process (`--time_loops CODE_ROOT`) ------------------------

def syne_tune_experiment(plan: Any, planned: Any) -> int:
    """Syne Tune 0.16's simulator on the experiment's workload: its Tuner, UserBlackboxBackend
    and SimulatorCallback, with the study's blackbox, workers, budget, start latency and
    scheduler. Two settings make it the same workload as stbench's loop: the tuner's sleep
    jumps to the next event (its default advances 5 simulated seconds), and real time between
    calls is not counted as simulated time. Returns the trials started."""
    from syne_tune import StoppingCriterion, Tuner
    from syne_tune.backend.simulator_backend.simulator_backend import SimulatorConfig
    from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback
    from syne_tune.blackbox_repository.simulated_tabular_backend import UserBlackboxBackend

    from stbench.backends.simulated.backend import SimulationTimeKeeper
    from stbench.backends.simulated.sources import ELAPSED
    from stbench.orchestration.study_runner import seeded_scheduler

    class JumpToNextEvent(SimulatorCallback):
        def on_tuning_sleep(self, sleep_time: float) -> None:
            heap = self._tuner.trial_backend._simulator_state.event_heap
            now = self._time_keeper.time()
            self._time_keeper.advance_to(max(heap[0][0], now + 1e-9) if heap else now + 1.0)

    spec, benchmark, simulation = plan.spec, plan.benchmark, plan.backend_setup
    latency = simulation.start_latency
    start = latency.warm if latency.warm is not None else latency.cold
    backend = UserBlackboxBackend(
        blackbox=simulation.blackbox, elapsed_time_attr=ELAPSED,
        max_resource_attr=benchmark.max_resource_attr,
        simulator_config=SimulatorConfig(
            delay_on_trial_result=0.0, delay_complete_after_final_report=0.0,
            delay_complete_after_stop=0.0, delay_start=float(start), delay_stop=0.0))
    backend._time_keeper = SimulationTimeKeeper()
    scheduler = seeded_scheduler(planned.method, benchmark, spec.scheduler_seed(planned.seed))
    tuner = Tuner(trial_backend=backend, scheduler=scheduler,
                  stop_criterion=StoppingCriterion(max_wallclock_time=spec.max_wallclock_time),
                  n_workers=int(spec.n_workers), sleep_time=0, callbacks=[JumpToNextEvent()],
                  save_tuner=False, tuner_name=f"speed-{planned.method.lower()}")
    tuner.run()
    return len(backend.trial_ids)


def time_loops(code_root: str, methods: list[str], seeds: int, with_syne_tune: bool) -> None:
    """Prints {label: [[seconds, CPU seconds, trials], ...]}: one entry per seed, methods
    interleaved."""
    sys.path.insert(0, code_root)
    os.environ["SYNETUNE_FOLDER"] = str(WORK / "syne-tune")
    import logging

    from threadpoolctl import threadpool_limits

    from stbench.cli.main import spec_from_args
    from stbench.orchestration.study_runner import plan_study, run_experiment

    logging.getLogger("syne_tune").setLevel(logging.ERROR)
    tag = f"loops-{Path(code_root).name}"
    shutil.rmtree(RESULTS / tag, ignore_errors=True)
    plan = plan_study(spec_from_args([
        "--backend", "simulated", "--from_study", RECORDED, "--method", *methods,
        "--num_seeds", str(seeds), "--random_seed", "20261130", "--experiment_tag", tag,
        "--results_root", str(RESULTS), "--jobs", "1"]))
    times: dict[str, list[list[float]]] = {}
    by_seed = sorted(plan.experiments, key=lambda planned: planned.seed)
    with threadpool_limits(1):
        for planned in by_seed:
            start, cpu = time.perf_counter(), time.process_time()
            outcome = run_experiment(plan, planned, io.StringIO(), live_progress=False)
            times.setdefault(planned.method, []).append(
                [time.perf_counter() - start, time.process_time() - cpu, outcome.trials])
            if with_syne_tune and planned.method in SYNE_TUNE_METHODS:
                start, cpu = time.perf_counter(), time.process_time()
                trials = syne_tune_experiment(plan, planned)
                times.setdefault(f"Syne Tune {planned.method}", []).append(
                    [time.perf_counter() - start, time.process_time() - cpu, trials])
    print(json.dumps(times))


def loops_of(code: str, args: argparse.Namespace) -> dict[str, list[list[float]]]:
    root = anchor_tree(WORK, ANCHOR) if code == "anchor" else ROOT
    command = [sys.executable, str(Path(__file__).resolve()), "--time_loops", str(root),
               "--timing_seeds", str(args.timing_seeds), "--methods", *args.methods]
    if code == "this":
        command.append("--with_syne_tune")
    return json.loads(run_quietly(command, root).splitlines()[-1])


# --- report ----------------------------------------------------------------------------

def report(studies: list[Timing], same: int, notes: list[str], loops: dict[str, Any],
           args: argparse.Namespace) -> list[str]:
    experiments = args.num_seeds * len(args.methods)
    shown = "stbench run " + " ".join(study_command("TAG", args)[3:]).replace(
        f" --results_root {RESULTS}", "")
    lines = [
        SECTION, "",
        f"Measured on {time.strftime('%Y-%m-%d %H:%M')} UTC on a {os.cpu_count()}-core machine "
        f"shared with other work (the load averages below), Python {sys.version.split()[0]}: "
        f"`{shown}` ({experiments} experiments of synthetic_curves, 2 workers, 30 s simulated "
        f"each, {args.jobs} at a time), with the anchor's code (commit {ANCHOR}, before the "
        "speed-ups) and this code, alternating, "
        f"{args.repeats} times each. The recorded study it replays: a real ASHA study of "
        "synthetic_curves, 2 seeds, 30 s, local processes. Medians; wall time includes the "
        "start-up, the workers' imports and the report at the end.", "",
        "| code | wall (median) | CPU, all processes (median) | runs (wall s) | "
        "load average before / after |",
        "|---|---|---|---|---|",
    ]
    for code in ("anchor", "this"):
        runs = [t for t in studies if t.code == code]
        lines.append(
            f"| {code} | {minutes(statistics.median(t.wall for t in runs))} | "
            f"{minutes(statistics.median(t.cpu for t in runs))} | "
            f"{', '.join(f'{t.wall:.0f}' for t in runs)} | "
            f"{', '.join(f'{t.load_before:.1f} / {t.load_after:.1f}' for t in runs)} |")
    ratio = (statistics.median(t.wall for t in studies if t.code == "anchor")
             / statistics.median(t.wall for t in studies if t.code == "this"))
    lines += ["", f"Wall time ratio anchor / this: {ratio:.2f}x. Same results as the anchor "
              f"(every results.jsonl row, simulated time included, and each experiment's "
              f"trials, best and status): {same}/{experiments} experiments."]
    lines += [f"- {note}" for note in notes[:10]]
    lines += [
        "", f"Single experiments in one process, one BLAS thread, seeds 0-"
        f"{args.timing_seeds - 1}, each method with both codes and ASHA and RS also through "
        "Syne Tune 0.16's Tuner + UserBlackboxBackend + SimulatorCallback on the same "
        "blackbox, workers, budget, start latency and scheduler (its sleep jumps to the next "
        "event and real time is not counted as simulated time, so it runs the same trials; "
        "its results are written as its callback writes them, the tuner is not pickled). "
        "Medians per experiment: wall seconds / CPU seconds (trials):", "",
        "| method | anchor | this | anchor / this | Syne Tune 0.16 simulator | "
        "Syne Tune / this |",
        "|---|---|---|---|---|---|",
    ]
    anchor, this = loops["anchor"], loops["this"]
    for method in args.methods:
        a, b = median_of(anchor[method]), median_of(this[method])
        row = f"| {method} | {cell(a)} | {cell(b)} | {ratios(a, b)} |"
        st = this.get(f"Syne Tune {method}")
        row += f" {cell(median_of(st))} | {ratios(median_of(st), b)} |" if st else " | |"
        lines.append(row)
    return lines + [""]


def median_of(entries: list[list[float]]) -> tuple[float, ...]:
    return tuple(statistics.median(e[i] for e in entries) for i in range(3))


def cell(median: tuple[float, ...]) -> str:
    return f"{median[0]:.3f} / {median[1]:.3f} ({median[2]:g})"


def ratios(slow: tuple[float, ...], fast: tuple[float, ...]) -> str:
    """Wall and CPU ratios."""
    return f"{slow[0] / fast[0]:.2f}x / {slow[1] / fast[1]:.2f}x"


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s" if seconds >= 60 else (
        f"{seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_seeds", type=int, default=30)
    parser.add_argument("--methods", nargs="+", default=["ASHA", "MOBSTER", "BO", "RS"])
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--random_seed", type=int, default=20261130)
    parser.add_argument("--repeats", type=int, default=3, help="study runs per code")
    parser.add_argument("--timing_seeds", type=int, default=10,
                        help="seeds of the single-experiment timings")
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    parser.add_argument("--time_loops", help=argparse.SUPPRESS)  # internal: one code's loops
    parser.add_argument("--with_syne_tune", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time_loops:
        time_loops(args.time_loops, args.methods, args.timing_seeds, args.with_syne_tune)
        return
    record_once()
    studies = []
    for _ in range(args.repeats):
        studies += [run_study("anchor", args), run_study("this", args)]
    same, notes = compare(result_frame("speed-anchor"), result_frame("speed-this"))
    loops = {code: loops_of(code, args) for code in ("anchor", "this")}
    publish(report(studies, same, notes, loops, args), args.write)


if __name__ == "__main__":
    main()
