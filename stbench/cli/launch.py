"""`stbench launch`: one orchestrator training job per (benchmark, method, seed) on SageMaker."""

from __future__ import annotations

import sys
from pathlib import Path

from stbench.cli.main import OneLineParser, add_spec_arguments, parse_extra_args
from stbench.launch.study import Study
from stbench.model.errors import UserError
from stbench.model.spec import ExperimentSpec


def study_from_args(argv: list[str]) -> tuple[Study, bool, str | None]:
    parser = OneLineParser(prog="stbench launch",
                           description="Launch experiments as SageMaker orchestrator jobs.")
    parser.add_argument("study", nargs="?", help="a study file, e.g. launch/tutorial.yaml")
    parser.add_argument("--force", action="store_true", help="relaunch running/completed ones")
    parser.add_argument("--orchestrator_image", "--orchestrator-image", default=None,
                        help="orchestrator ECR URI (default: beside --image)")
    parser.add_argument("--max_instances", "--max-instances", type=int, default=None,
                        help="refuse to launch a study that could run more instances at once")
    add_spec_arguments(parser, only_given=True)
    args, rest = parser.parse_known_args(argv)
    given = vars(args)
    study, force = given.pop("study"), given.pop("force")
    orchestrator_image = given.pop("orchestrator_image")
    max_instances = given.pop("max_instances")
    if max_instances is not None and max_instances < 1:
        raise UserError(f"--max_instances must be at least 1, got {max_instances}")
    if "method" in given:
        given["method"] = tuple(given["method"])
    extra = parse_extra_args(rest)
    if study:
        from stbench.launch.study import load_study

        if extra:
            given["extra_args"] = extra
        return load_study(Path(study), given, max_instances), force, orchestrator_image
    if "benchmark" not in given or "method" not in given:
        raise UserError(
            "pass a study file or --benchmark and --method; see `stbench launch --help`"
        )
    spec = ExperimentSpec.from_dict({**given, "extra_args": extra})
    return Study((spec,), max_instances), force, orchestrator_image


def cmd_launch(argv: list[str]) -> int:
    import boto3

    from stbench.launch.remote import check_study, launch, plan_launch

    study, force, orchestrator_image = study_from_args(argv)
    session = boto3.session.Session(region_name=study.specs[0].region)
    planned = [job for spec in study.specs
               for job in plan_launch(spec, session, orchestrator_image, force)]
    region = planned[0].spec.region if planned else study.specs[0].region
    check_study(study, planned, session)
    created = launch(planned, session, str(region),
                     note=lambda message: print(message, file=sys.stderr))
    for name in created:
        print(name)
    skipped = len(planned) - len(created)
    print(f"{len(created)} orchestrator jobs launched, {skipped} skipped", file=sys.stderr)
    return 0
