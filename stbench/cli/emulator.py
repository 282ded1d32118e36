"""`stbench emulator`: a local SageMaker endpoint until Ctrl-C (or SIGTERM).

It prints the environment to export on stdout, one `export …` line, so that
`eval "$(stbench emulator … | head -1)"` style scripts and humans alike can use it; progress
and the shutdown summary go to stderr. See docs/emulator.md.
"""

from __future__ import annotations

import argparse
import sys

from stbench.model.errors import UserError

DEFAULT_PORT = 5555  # moto's own default (5000) is where a local registry usually listens


def _parser() -> argparse.ArgumentParser:
    from stbench.cli.arguments import OneLineParser
    from stbench.emulator.config import EmulatorConfig

    defaults = EmulatorConfig()
    parser = OneLineParser(
        prog="stbench emulator",
        description="Serve a local SageMaker endpoint (training jobs as containers of the "
                    "local Docker engine, with S3, CloudWatch Logs, ECR, IAM, STS and Service "
                    "Quotas) on 127.0.0.1 until Ctrl-C.")

    def option(name: str, **kwargs: object) -> None:
        parser.add_argument(f"--{name}", f"--{name.replace('_', '-')}", dest=name, **kwargs)

    option("port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT}; "
           "0 picks a free one)")
    option("region", default=defaults.region, help="region printed for clients "
           f"(default {defaults.region}); requests signed for another region are served too")
    for name, text in (
            ("cold_start_seconds", "provisioning time of a new instance"),
            ("warm_start_seconds", "provisioning time on a reused warm pool"),
            ("log_delay_seconds", "how late a log line becomes visible in CloudWatch Logs"),
            ("stop_grace_seconds", "SIGTERM to SIGKILL on StopTrainingJob"),
            ("checkpoint_sync_seconds", "upload period of /opt/ml/checkpoints while a job "
                                        "runs")):
        option(name, type=float, default=getattr(defaults, name),
               help=f"{text} (default {getattr(defaults, name):g})")
    option("throttle_fraction", type=float, default=0.0,
           help="share of SageMaker and Logs calls answered with ThrottlingException")
    option("capacity_refusal_fraction", type=float, default=0.0,
           help="share of CreateTrainingJob calls answered with ResourceLimitExceeded (as "
                "if other jobs held the quota)")
    option("seed", type=int, default=None, help="seed of the throttling and refusal draws")
    option("quota", action="append", default=[], metavar="NAME=VALUE",
           help="a Service Quotas value, e.g. 'ml.m5.large for training warm pool usage=4' "
                "(repeatable; defaults: 20 for training job usage, 0 for warm pool usage)")
    option("bucket", default=None, help="an S3 bucket to create for --s3_root (with --no_iam; "
           "with IAM the stack's bucket is S3_ROOT, the printed user may use no other)")
    option("work_dir", default=None, help="where the jobs' /opt/ml folders live "
           "(default: a temporary folder)")
    option("no_iam", action="store_true", help="do not enforce IAM and do not deploy "
           "stbench's CloudFormation stack: every key is the account's root, as on moto")
    return parser


def _set_up_account(environment: dict[str, str],
                    enforce_iam: bool) -> tuple[dict[str, str], dict[str, str]]:
    """With IAM enforced: stbench's CloudFormation stack deployed (as its README tells AWS
    users) and a user holding its UserPolicy, whose credentials the clients get; the stack's
    outputs. Without: the administrator test credentials, no stack."""
    if not enforce_iam:
        return environment, {}
    from stbench.emulator.account import LAUNCHING_USER, deploy_stack, launching_user

    outputs = deploy_stack(environment)
    user = launching_user(environment, outputs["UserPolicy"])
    print(f"IAM enforced: the printed credentials are IAM user {LAUNCHING_USER}'s, holding "
          f"{outputs['UserPolicy']}; administrator (unchecked): "
          "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing", file=sys.stderr,
          flush=True)
    return {**environment, **user}, outputs


def cmd_emulator(argv: list[str]) -> int:
    from pathlib import Path

    from stbench.emulator.config import EmulatorConfig, parse_quota

    args = _parser().parse_args(argv)
    config = EmulatorConfig(
        port=args.port, region=args.region, cold_start_seconds=args.cold_start_seconds,
        warm_start_seconds=args.warm_start_seconds, log_delay_seconds=args.log_delay_seconds,
        throttle_fraction=args.throttle_fraction,
        capacity_refusal_fraction=args.capacity_refusal_fraction,
        stop_grace_seconds=args.stop_grace_seconds,
        checkpoint_sync_seconds=args.checkpoint_sync_seconds, seed=args.seed,
        quotas=dict(parse_quota(text) for text in args.quota),
        work_dir=Path(args.work_dir) if args.work_dir else None, enforce_iam=not args.no_iam)
    try:
        from stbench.emulator.server import Emulator
    except ImportError as err:
        raise UserError(f"the emulator needs moto's server ({err}): "
                        "pip install -e '.[emulator]'") from None
    from stbench.emulator.account import ensure_bucket, ensure_execution_role
    from stbench.launch.iam_template import STACK_NAME

    emulator = Emulator(config)
    try:
        emulator.start(in_thread=True)
    except OSError as err:
        raise UserError(f"cannot serve on 127.0.0.1:{config.port} ({err.strerror or err}): "
                        "pass another --port (0 picks a free one)") from None
    try:
        environment = emulator.environment()
        clients, stack = _set_up_account(environment, config.enforce_iam)
        role = stack.get("Role") or ensure_execution_role(environment)
        print("export " + " ".join(f"{key}={value}" for key, value in clients.items()),
              flush=True)
        if stack:  # what `make remote` takes, for scripts: eval "$(... | head -2)"
            print(f"export ROLE={stack['Role']} S3_ROOT={stack['S3Root']}", flush=True)
        print(f"stbench emulator {emulator.id} serving {emulator.endpoint_url} (throttling "
              f"and refusal seed {emulator.seed}); Ctrl-C stops it and removes its containers",
              file=sys.stderr, flush=True)
        print(f"execution role (--role): {role}", file=sys.stderr, flush=True)
        for key, value in stack.items():
            print(f"stack {STACK_NAME} output {key}: {value}", file=sys.stderr, flush=True)
        print(f"ECR registry (`make push` pushes there): {emulator.ecr_registry}",
              file=sys.stderr, flush=True)
        if args.bucket:
            print(f"bucket (--s3_root): {ensure_bucket(environment, args.bucket)}/stbench",
                  file=sys.stderr, flush=True)
        emulator.wait()
    except KeyboardInterrupt:
        pass
    finally:
        removed, left = emulator.close()
        tail = f", {left} left (remove them with `docker rm -f`)" if left else ""
        print(f"stbench emulator stopped: removed {removed} containers and volumes{tail}",
              file=sys.stderr, flush=True)
    return 0
