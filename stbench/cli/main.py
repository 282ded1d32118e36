"""`stbench` command line. Commands:

- `run`: a study (benchmark x methods x seeds) with the orchestrator here, trials as local
  processes, local trainer containers or SageMaker training jobs (`--backend`);
- `results`: its table and plots (fetched from S3 for a launched study);
- `benchmarks`, `methods`: what can be run;
- `images push`: the role images to ECR or another registry;
- `launch`: a study as SageMaker orchestrator jobs (rehearsed on `stbench emulator`);
- `status`, `cleanup`: a launched study's jobs, and stopping them and their warm pools;
- `emulator`: a local SageMaker endpoint for rehearsals without AWS.

Commands that need boto3 or docker live in their own `stbench/cli` modules, loaded on use.

`run`'s flags are generated from `ExperimentSpec`'s fields (`arguments.py`), so the spec
stays the single source of truth.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stbench.cli.arguments import OneLineParser, add_spec_arguments, parse_extra_args
from stbench.model.backend_names import SAGEMAKER, SIMULATED
from stbench.model.errors import UserError, did_you_mean
from stbench.model.spec import ExperimentSpec


def spec_from_args(argv: list[str]) -> ExperimentSpec:
    return run_request(argv)[0]


def run_request(argv: list[str]) -> tuple[ExperimentSpec, bool]:
    """`stbench run`'s spec, and whether it is a dry run (`--dry_run`: how, not what)."""
    parser = OneLineParser(
        prog="stbench run",
        description="Run an HPO study: the orchestrator in this process, trials as local "
                    "processes, local containers or SageMaker training jobs (--backend).")
    add_spec_arguments(parser)
    parser.add_argument("--dry_run", "--dry-run", action="store_true",
                        help="check everything and print the plan (with --backend sagemaker "
                             "its cost estimate); create nothing")
    args, rest = parser.parse_known_args(argv)
    values = vars(args)
    dry_run = values.pop("dry_run")
    values["method"] = tuple(values["method"])
    values["method_args"] = tuple(values["method_args"])
    values["extra_args"] = parse_extra_args(rest)
    return ExperimentSpec(**values), dry_run


def cmd_run(argv: list[str]) -> int:
    spec, dry_run = run_request(argv)
    return run_and_report(spec, dry_run=dry_run, announce_cost=True)


def run_and_report(spec: ExperimentSpec, dry_run: bool = False,
                   announce_cost: bool = False) -> int:
    """Plan (all checks first), run every experiment, then print the table and plots.

    `announce_cost`: SageMaker trials' cost estimate on stderr before the first job (a
    launched orchestrator leaves it out: `stbench launch` said it for the whole study)."""
    from stbench.analysis.report import report
    from stbench.orchestration.study_runner import plan_study, run_study

    plan = plan_study(spec)
    spec = plan.spec
    seeds = f"{spec.seeds.start}..{spec.seeds.stop - 1}"
    print(
        f"{'dry run of ' if dry_run else ''}experiment tag {spec.experiment_tag}: "
        f"{plan.benchmark.name} x {', '.join(v.label for v in spec.variants())} x seeds {seeds}"
        f", {spec.n_workers} workers, {spec.max_wallclock_time:g} s each, "
        f"random_seed {spec.random_seed}",
        flush=True,
    )
    if spec.backend == SIMULATED:  # where the curves come from, the surrogate's fit error
        print(plan.backend_setup.summary(), flush=True)
        print(f"{spec.jobs} experiments at a time (--jobs), each in its own process"
              if (spec.jobs or 1) > 1 else "experiments one after another (--jobs 1)",
              flush=True)
    if dry_run:
        from stbench.cli.run_plan import print_run_plan

        print_run_plan(plan)
        return 0
    if announce_cost and spec.backend == SAGEMAKER:
        from stbench.cli.run_plan import run_estimate

        print(run_estimate(plan).line(), file=sys.stderr, flush=True)
    outcomes = run_study(plan)
    text, plots = report(Path(spec.results_root), spec.experiment_tag)
    print()
    print(text)
    for path in plots:
        print(f"plot: {path}")
    failed = [o for o in outcomes if o.status != "completed"]
    return 1 if failed else 0


def cmd_results(argv: list[str]) -> int:
    from stbench.analysis.report import report_parts
    from stbench.cli.launched_study import add_study_arguments, fetch_launched, needs_fetch

    parser = OneLineParser(prog="stbench results", description="Summarize a study.")
    add_study_arguments(parser)
    parser.add_argument("--results_root", "--results-root", default="results")
    parser.add_argument("--out_dir", "--out-dir", default=None, help="where to write plots")
    parser.add_argument("--refresh", action="store_true",
                        help="fetch a launched study's results from S3 again (done by itself "
                             "while an experiment of the copy here is unfinished)")
    parser.add_argument("--csv", default=None, metavar="PATH",
                        help="also write the results frame there, one row per report "
                             "(columns: docs/results.md)")
    args = parser.parse_args(argv)
    csv = Path(args.csv) if args.csv else None
    if csv is not None:
        check_csv_path(csv)
    root = Path(args.results_root)
    if args.refresh or needs_fetch(root / args.experiment_tag):
        fetch_launched(root, args)
    out_dir = Path(args.out_dir) if args.out_dir else None
    # the process ends after the report: its objects go back with it, without Python's last
    # collection passing over them (0.4 s of CPU after a 64k-report tag)
    atexit.register(gc.freeze)
    # each part as soon as it is ready: the table first, then the comparisons, then the plots
    after_text = False
    for index, part in enumerate(report_parts(root, args.experiment_tag, out_dir, csv)):
        if isinstance(part, Path):
            print(f"{chr(10) if after_text else ''}plot: {part}", flush=True)
            after_text = False
        else:
            print(part if index == 0 else f"\n{part}", flush=True)
            after_text = True
    return 0


def check_csv_path(csv: Path) -> None:
    """`--csv`: a file that can be written, checked before the tag is read (one line)."""
    if csv.is_dir():
        raise UserError(f"--csv {csv}: is a folder; name a file in it")
    if not csv.parent.is_dir():
        raise UserError(f"--csv {csv}: folder {csv.parent} does not exist; create it first")
    if not os.access(csv.parent, os.W_OK) or (csv.exists() and not os.access(csv, os.W_OK)):
        raise UserError(f"--csv {csv}: cannot write there; choose another path")


def cmd_benchmarks(argv: list[str]) -> int:
    from stbench.model.catalog import builtin_names, load_benchmark

    OneLineParser(prog="stbench benchmarks").parse_args(argv)
    names = builtin_names()
    width = max(map(len, names))
    for name in names:
        bench = load_benchmark(name)
        tunable = ", ".join(bench.tunable_names())
        optimum = f", optimum {bench.optimum:g}" if bench.optimum is not None else ""
        runs_on = (f"table {bench.table} (--backend simulated only)" if bench.tabulated
                   else f"{bench.image} image")
        print(f"{name:{width}s} {bench.purpose:10s} {bench.metric} ({bench.mode}{optimum}), "
              f"{bench.resource_attr} up to {bench.max_resource}, {bench.n_workers} workers, "
              f"{bench.max_wallclock_time:g} s, {runs_on}; tunes {tunable}")
        if bench.optimum_source:
            print(f"{'':{width}s}   optimum: {bench.optimum_source}")
    print("purpose: 'comparison' benchmarks separate HPO methods in minutes on a CPU and know "
          "their optimum (regret); 'example' ones show real models; 'testing' ones exercise "
          "stbench itself")
    return 0


def cmd_methods(argv: list[str]) -> int:
    from stbench.methods.registry import all_methods

    parser = OneLineParser(prog="stbench methods", description="List the HPO methods.")
    parser.add_argument("--details", action="store_true",
                        help="also each method's settings (set them with --method_args)")
    details = parser.parse_args(argv).details
    for method in all_methods().values():
        kind = "multi-fidelity" if method.multi_fidelity else "full-fidelity"
        source = f" (package {method.package})" if method.package else ""
        print(f"{method.name:10s} {kind:15s} {method.description}{source}")
        for setting in method.settings if details else ():
            where = setting.describe_range()
            print(f"    {setting.name} ({setting.kind.__name__}{', ' + where if where else ''}"
                  f"; default {setting.describe_default()}): {setting.meaning}")
    if details:
        print("set them with --method_args NAME:key=value[,key=value...], e.g. --method ASHA "
              "--method_args ASHA:reduction_factor=4; several entries for one method run as "
              "variants, labelled NAME(key=value,...)")
    return 0


# Commands that call AWS or Docker, imported on use: boto3 and docker stay out of the start-up
# of `stbench run`. They share the parser with this module through `arguments.py`.
LAZY_COMMANDS = {
    "images": "stbench.cli.images:cmd_images",
    "launch": "stbench.cli.launch:cmd_launch",
    "status": "stbench.cli.status:cmd_status",
    "cleanup": "stbench.cli.cleanup:cmd_cleanup",
    "emulator": "stbench.cli.emulator:cmd_emulator",
}


def _lazy(target: str) -> Callable[[list[str]], int]:
    def command(argv: list[str]) -> int:
        module, name = target.split(":")
        return getattr(importlib.import_module(module), name)(argv)

    return command


COMMANDS = {
    "run": cmd_run,
    "results": cmd_results,
    "benchmarks": cmd_benchmarks,
    "methods": cmd_methods,
    **{name: _lazy(target) for name, target in LAZY_COMMANDS.items()},
}


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def guarded(action: Callable[[], int], on_error: Callable[[str], None] | None = None) -> int:
    """Run a command the way every stbench entrypoint does: bad input is one line and exit 2,
    SIGTERM (`docker stop`, StopTrainingJob) ends it like Ctrl-C, after cleaning up."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    logging.getLogger("syne_tune").setLevel(logging.ERROR)  # we report trial failures ourselves
    try:
        return action()
    except UserError as err:
        print(f"stbench: error: {err}", file=sys.stderr)
        if on_error:
            on_error(str(err))
        return err.exit_code
    except KeyboardInterrupt:
        print("stbench: interrupted; rerun the same command with --resume to continue",
              file=sys.stderr)
        if on_error:
            on_error("interrupted by a stop signal")
        return 130
    except Exception as err:  # a crash: the traceback for us, one line for the user and the job
        from stbench.backends.aws import access_denied, denial_line
        from stbench.model.failures import crash_reason

        if denied := access_denied(err) or denial_line(str(err)):  # AWS refused: no crash
            print(f"stbench: error: {denied}", file=sys.stderr)
            if on_error:
                on_error(denied)
            return UserError(denied).exit_code
        traceback.print_exc()
        reason = crash_reason(err)
        print(f"stbench: error: {reason}; rerun with --resume once it is fixed", file=sys.stderr)
        if on_error:
            on_error(reason)
        return 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: stbench {" + ",".join(COMMANDS) + "} ...  (stbench COMMAND --help)")
        return 0 if argv else 2
    command = COMMANDS.get(argv[0])

    def action() -> int:
        if command is None:
            raise UserError(f"unknown command '{argv[0]}'; valid ones: {', '.join(COMMANDS)}"
                            f"{did_you_mean(argv[0], COMMANDS)}")
        return command(argv[1:])

    return guarded(action)


if __name__ == "__main__":
    sys.exit(main())
