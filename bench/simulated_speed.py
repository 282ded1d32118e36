"""How long a 30-seed simulated study takes: a simulated study from a recorded one, with its
experiments in parallel processes (`--jobs`) against the serial anchor (`--jobs 1`).

    .venv/bin/python bench/simulated_speed.py [--num_seeds 30] [--write]

1. Records once (cached under build/simulated-speed/): a real synthetic_curves ASHA study on
   local processes, 2 seeds, 30 s each (about a minute).
2. Runs `stbench run --backend simulated --from_study <tag> --method ASHA MOBSTER BO RS
   --num_seeds N` twice, same seeds: `--jobs 1`, then `--jobs <CPUs>`; wall time, CPU time
   of the command and its workers, the load average around each, and whether both gave the
   same rows (results.jsonl without the wallclock_time column).
3. Prints a table; `--write` puts it into docs/simulated.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from docs_section import publish  # noqa: E402  (this folder)

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "simulated-speed"
RESULTS = WORK / "results"
RECORDED = "speed-recorded"
STBENCH = [sys.executable, "-m", "stbench.cli.main", "run"]
RECORD = [*STBENCH, "--benchmark", "synthetic_curves", "--method", "ASHA", "--num_seeds", "2",
          "--random_seed", "7", "--experiment_tag", RECORDED, "--results_root", str(RESULTS)]
DOC = ROOT / "docs" / "simulated.md"
SECTION = "## Speed of a 30-seed simulated study (bench/simulated_speed.py)"


@dataclass(frozen=True)
class Timing:
    jobs: int
    wall: float
    cpu: float  # user + system of the command and its worker processes
    load_before: float
    load_after: float
    per_method: dict[str, float]  # serial run: seconds per method (consecutive experiment ends)


def record_once() -> None:
    """A real study to replay; reused while all its experiments are complete."""
    metadata = sorted((RESULTS / RECORDED).glob("*/*/*/metadata.json"))
    if len(metadata) == 2 and all(json.loads(p.read_text()).get("status") == "completed"
                                  for p in metadata):
        return
    shutil.rmtree(RESULTS / RECORDED, ignore_errors=True)
    print(f"recording: {shown(RECORD)}", flush=True)
    run_quietly(RECORD)


def run_quietly(command: list[str]) -> None:
    """Progress lines go to a pipe; they are shown only when the command fails."""
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"{shown(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")


def simulate(tag: str, jobs: int, args: argparse.Namespace) -> Timing:
    shutil.rmtree(RESULTS / tag, ignore_errors=True)
    command = [*STBENCH, "--backend", "simulated", "--from_study", RECORDED, "--method",
               *args.methods, "--num_seeds", str(args.num_seeds), "--random_seed",
               str(args.random_seed), "--experiment_tag", tag, "--results_root", str(RESULTS),
               "--jobs", str(jobs)]
    print(f"running: {shown(command)}", flush=True)
    load_before = os.getloadavg()[0]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    run_quietly(command)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    return Timing(jobs, wall, cpu, load_before, os.getloadavg()[0],
                  per_method_seconds(tag, args.methods) if jobs == 1 else {})


def per_method_seconds(tag: str, methods: list[str]) -> dict[str, float]:
    """A serial run's experiments end one after another: the time between consecutive ends
    (metadata.json's last write) is one experiment's (the first one's includes start-up)."""
    ends = sorted((p.stat().st_mtime, p.parent.parent.name)
                  for p in (RESULTS / tag).glob("*/*/*/metadata.json"))
    seconds = dict.fromkeys(methods, 0.0)
    for (previous, _), (end, method) in zip(ends, ends[1:], strict=False):
        seconds[method] += end - previous
    return seconds


def rows_without_times(tag: str) -> dict[str, list[dict]]:
    out = {}
    for path in sorted((RESULTS / tag).glob("*/*/*/results.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line]
        out[str(path.relative_to(RESULTS / tag))] = [
            {k: v for k, v in row.items() if k != "wallclock_time"} for row in rows]
    return out


def report(serial: Timing, parallel: Timing, same: bool, args: argparse.Namespace) -> list[str]:
    experiments = args.num_seeds * len(args.methods)
    lines = [
        SECTION, "",
        f"Measured on {time.strftime('%Y-%m-%d %H:%M')} UTC on a {os.cpu_count()}-core machine "
        f"shared with other work: `stbench run --backend simulated --from_study {RECORDED} "
        f"--method {' '.join(args.methods)} --num_seeds {args.num_seeds} --random_seed "
        f"{args.random_seed}` ({experiments} experiments of synthetic_curves, 2 workers, 30 s "
        "simulated each), first with `--jobs 1` (the anchor: one process, experiments one after "
        f"another), then with `--jobs {parallel.jobs}`, same seeds. The recorded study: a real "
        f"ASHA study of synthetic_curves, 2 seeds, 30 s, local processes (`{shown(RECORD)}`).",
        "",
        "| run | wall | CPU (all processes) | load average before / after |",
        "|---|---|---|---|",
    ]
    for timing in (serial, parallel):
        lines.append(f"| `--jobs {timing.jobs}` | {minutes(timing.wall)} | "
                     f"{minutes(timing.cpu)} | {timing.load_before:.1f} / "
                     f"{timing.load_after:.1f} |")
    per_method = ", ".join(f"{m} {s:.1f} s" for m, s in serial.per_method.items())
    lines += [
        "", f"Wall time ratio serial / parallel: {serial.wall / parallel.wall:.2f}x. Same rows "
        f"in both runs (results.jsonl without wallclock_time): {'yes' if same else 'NO'}.", "",
        f"Serial run, seconds per method ({args.num_seeds} experiments each, from consecutive "
        f"experiment ends): {per_method}.", "",
    ]
    return lines


def shown(command: list[str]) -> str:
    """The command as a user types it."""
    return " ".join(["stbench", *command[3:]]).replace(f" --results_root {RESULTS}", "")


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s" if seconds >= 60 else (
        f"{seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_seeds", type=int, default=30)
    parser.add_argument("--methods", nargs="+", default=["ASHA", "MOBSTER", "BO", "RS"])
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--random_seed", type=int, default=20261130)
    parser.add_argument("--write", action="store_true", help="update docs/simulated.md")
    args = parser.parse_args()
    record_once()
    serial = simulate("speed-jobs1", 1, args)
    parallel = simulate(f"speed-jobs{args.jobs}", args.jobs, args)
    same = rows_without_times("speed-jobs1") == rows_without_times(f"speed-jobs{args.jobs}")
    publish(report(serial, parallel, same, args), args.write, doc=DOC)


if __name__ == "__main__":
    main()
