"""A benchmark whose script reports the arguments it got (issue 14, R6): hyperparameter values
that a shell would act on must reach it as literal arguments, through every back-end.

If any layer ran a shell, `$(...)`, backticks, `;` or a newline would create a `pwned` file
or delete the canary folder, and the echoed arguments would differ from the values given.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

STBENCH = Path(sys.executable).parent / "stbench"  # the installed console script
# Literal values; nothing here may ever be destructive if a shell did run it.
HOSTILE = {
    "subst": "$(touch pwned)",
    "backticks": "`touch pwned`",
    "chained": "; touch pwned; rm -rf ./canary",
    "quotes": "'\"\\ | & > pwned < $HOME * ~",
    "dashes": "--st_checkpoint_dir=/tmp/elsewhere",
    "long": "L" * 2400,  # long, within SageMaker's 2500 characters
}
# SageMaker's HyperParameterValue pattern ('.*') refuses line breaks, so job back-ends stop
# such a value before any job (a bad-input case); local processes take it
LOCAL_ONLY = {"newlines": "first line\nsecond; touch pwned\n"}
SCRIPT = """\
import sys
from syne_tune import Reporter
Reporter()(epoch=1, loss=0.5, argv=sys.argv[1:])
"""


def write_benchmark(folder: Path, values: dict[str, str]) -> Path:
    """The echo benchmark (its folder also holds the canary a `rm -rf` would remove)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "echo_argv.py").write_text(SCRIPT)
    (folder / "canary").mkdir(exist_ok=True)
    definition: dict[str, Any] = {
        "name": "echo_argv", "script": "echo_argv.py", "metric": "loss", "mode": "min",
        "resource_attr": "epoch", "max_resource_attr": "epochs", "max_wallclock_time": 120,
        "n_workers": 1, "instance_type": "ml.c5.xlarge",
        "config_space": {"x": {"type": "uniform", "lower": 0.0, "upper": 1.0}, "epochs": 1,
                         **values},
    }
    path = folder / "echo_argv.yaml"
    path.write_text(yaml.safe_dump(definition))
    return path


def run_args(benchmark: Path, results: Path, *extra: str) -> list[str]:
    return ["run", "--benchmark", str(benchmark), "--method", "RS", "--max_num_trials", "1",
            "--n_workers", "1", "--max_wallclock_time", "120", "--results_root", str(results),
            "--experiment_tag", "hostile", "--random_seed", "3", *extra]


def echoed_arguments(results: Path) -> list[str]:
    """The arguments the trial's script reported."""
    rows = [json.loads(line) for path in results.rglob("results.jsonl")
            for line in path.read_text().splitlines() if line]
    argvs = [row["metrics"]["argv"] for row in rows if "argv" in row.get("metrics", {})]
    assert len(argvs) == 1, rows
    return argvs[0]


def check_literal(argv: list[str], folders: list[Path], values: dict[str, str]) -> None:
    """Every hostile value arrived as one literal `--key=value` argument (the form that keeps
    a value such as `--st_checkpoint_dir=...` from reading as an option), and nothing ran."""
    for key, value in values.items():
        given = [arg for arg in argv if arg.startswith(f"--{key}=")]
        assert given == [f"--{key}={value}"], (key, given)
    for folder in folders:
        assert not list(folder.rglob("pwned")), folder
    assert all((folder / "canary").is_dir() for folder in folders[:1])


def run_cli(args: list[str], cwd: Path, env: dict[str, str],
            timeout: float = 300) -> subprocess.CompletedProcess:
    """The installed console script, in `cwd` (where a `touch pwned` would land)."""
    return subprocess.run([str(STBENCH), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
