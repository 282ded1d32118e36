"""`stbench launch`: one orchestrator training job per (benchmark, method, seed) on SageMaker."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from stbench.cli.arguments import OneLineParser, add_spec_arguments, parse_extra_args
from stbench.launch.study_file import Study
from stbench.model.errors import UserError
from stbench.model.spec import ExperimentSpec

if TYPE_CHECKING:  # boto3 and the launch module load on use
    import boto3

    from stbench.launch.remote import PlannedJob


@dataclass(frozen=True)
class LaunchRequest:
    """What `stbench launch` was asked: a study, and how to launch it."""

    study: Study
    force: bool = False
    orchestrator_image: str | None = None
    dry_run: bool = False


def study_from_args(argv: list[str]) -> LaunchRequest:
    parser = OneLineParser(prog="stbench launch",
                           description="Launch experiments as SageMaker orchestrator jobs.")
    parser.usage = "stbench launch [STUDY_FILE] [options] [--<benchmark argument> VALUE ...]"
    parser.add_argument("--force", action="store_true", help="relaunch running/completed ones")
    parser.add_argument("--orchestrator_image", "--orchestrator-image", default=None,
                        help="orchestrator ECR URI (default: beside --image)")
    parser.add_argument("--max_instances", "--max-instances", type=int, default=None,
                        help="refuse to launch a study that could run more instances at once")
    parser.add_argument("--dry_run", "--dry-run", action="store_true",
                        help="check everything and print the plan and its cost estimate; "
                             "create nothing")
    add_spec_arguments(parser, only_given=True)
    args, rest = parser.parse_known_args(argv)
    study, rest = _split_study_file(rest)
    given = vars(args)
    force = given.pop("force")
    orchestrator_image = given.pop("orchestrator_image")
    max_instances = given.pop("max_instances")
    dry_run = given.pop("dry_run")
    if max_instances is not None and max_instances < 1:
        raise UserError(f"--max_instances must be at least 1, got {max_instances}")
    if "method" in given:
        given["method"] = tuple(given["method"])
    if "method_args" in given:
        given["method_args"] = tuple(given["method_args"])
    extra = parse_extra_args(rest)
    if study:
        from stbench.launch.study_file import load_study

        if extra:
            given["extra_args"] = extra
        return LaunchRequest(load_study(Path(study), given, max_instances), force,
                             orchestrator_image, dry_run)
    if "benchmark" not in given or "method" not in given:
        raise UserError(
            "pass a study file or --benchmark and --method; see `stbench launch --help`"
        )
    spec = ExperimentSpec.from_dict({**given, "extra_args": extra})
    return LaunchRequest(Study((spec,), max_instances), force, orchestrator_image, dry_run)


def _split_study_file(rest: list[str]) -> tuple[str | None, list[str]]:
    """The study file among the arguments argparse left: benchmark arguments come in
    `--key value` pairs, so a lone word is the file (a positional argument would swallow
    those values instead)."""
    study, others, index = None, [], 0
    while index < len(rest):
        if rest[index].startswith("--"):
            others += rest[index:index + 2]
            index += 2
        elif study is None:
            study, index = rest[index], index + 1
        else:
            raise UserError(f"unexpected argument '{rest[index]}': give one study file")
    return study, others


def cmd_launch(argv: list[str]) -> int:
    import boto3

    from stbench.launch.remote import (
        SageMakerTarget,
        check_study,
        launch,
        launch_estimate,
        plan_launch,
    )
    from stbench.model.prices import load_price_table

    asked = study_from_args(argv)
    study = asked.study
    note = lambda message: print(message, file=sys.stderr)  # noqa: E731
    # one path for AWS and the local endpoint (`stbench emulator`): boto3 finds the endpoint
    # through AWS_ENDPOINT_URL, as it finds AWS
    session = boto3.session.Session(region_name=study.specs[0].region)
    target = SageMakerTarget(session)
    planned = [job for spec in study.specs
               for job in plan_launch(spec, target, asked.orchestrator_image, asked.force)]
    check_study(study, planned, session, write_record=not asked.dry_run)
    estimate = launch_estimate(planned, load_price_table())
    if asked.dry_run:
        print_plan(study, planned, session, estimate.line())
        return 0
    # the names on stdout, for scripts, each as its job is created; the rest on stderr
    print(estimate.line(), file=sys.stderr, flush=True)
    created = launch(planned, target, note=note,
                     on_launched=lambda name: print(name, flush=True))
    skipped = len(planned) - len(created)
    print(f"{len(created)} orchestrator jobs launched, {skipped} skipped; follow them with "
          f"`stbench status --experiment_tag {study.specs[0].experiment_tag}`", file=sys.stderr)
    return 0


def print_plan(study: Study, planned: list[PlannedJob], session: boto3.session.Session,
               estimate_line: str) -> None:
    """`--dry_run`: the experiments, their job names and instances, the quotas they need at
    once and the estimate, on stdout; every check has passed, nothing was created."""
    from stbench.launch.remote import plan_lines, quota_lines, study_demands

    to_launch = [job for job in planned if not job.skip_reason]
    tag = study.specs[0].experiment_tag
    print(f"dry run of study '{tag}': {len(to_launch)} orchestrator jobs would be launched, "
          f"{len(planned) - len(to_launch)} skipped; nothing was created")
    for line in plan_lines(planned):
        print(line)
    if to_launch:
        region = str(to_launch[0].spec.region)
        checked = not any(job.spec.no_quota_check for job in to_launch)
        print(f"SageMaker quotas this study needs at once in {region}:")
        for line in quota_lines(session, region, study_demands(to_launch), checked):
            print(line)
    print(estimate_line)
    print("to launch: the same command without --dry_run")
