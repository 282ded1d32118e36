"""The bad-input table (issue 14, R5): kinds of input a user gets wrong, one command each.

Every case must end with exit code 2, one `stbench: error:` line naming the problem and the
fix, and nothing written. `test_bad_input.py` asserts it; `bench/reliability_table.py` runs
the same table to write docs/reliability.md, so the table there is what the code prints.

Cases run in-process with AWS pointed at a closed port of 127.0.0.1 and Docker at a socket
that does not exist: a case that reached either would print a different line, so these
checks run before any AWS or Docker call (the integration test replays the AWS ones against
the local SageMaker endpoint and compares its buckets and jobs before and after).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from stbench.cli.main import main

STBENCH = Path(sys.executable).parent / "stbench"  # the installed console script
TMP = "{tmp}"  # replaced by the case's folder in argv and file contents
ROLE = "arn:aws:iam::123456789012:role/stbench"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/stbench-trainer:latest"
SAGEMAKER = ("--role", ROLE, "--s3_root", "s3://stbench-bucket/studies", "--image", IMAGE)
# distinctive credentials: no line stbench prints may show them (issue 14, R6)
DEAD_AWS = {"AWS_ACCESS_KEY_ID": "AKIASTBENCHDEAD0R5X1",
            "AWS_SECRET_ACCESS_KEY": "stbenchDeadSecretR5/neverPrinted000000001",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_EC2_METADATA_DISABLED": "true"}

BENCH_FIELDS = """\
script: train.py
metric: loss
mode: min
resource_attr: epoch
max_resource_attr: epochs
max_wallclock_time: 10
n_workers: 1
instance_type: ml.c5.xlarge
"""


def bench_yaml(head: str = "name: mine\n", space: str = "  epochs: 2\n",
               fields: str = BENCH_FIELDS) -> str:
    return f"{head}{fields}config_space:\n  lr: {{type: uniform, lower: 0, upper: 1}}\n{space}"


STUDY = "experiment_tag: study\nbenchmarks: [synthetic_curves]\nmethods: [RS]\n"
MANY_ENTRIES = "".join(f"  p{i}: {i}\n" for i in range(100))
LONG_VALUE = "a" * 2501


@dataclass(frozen=True)
class BadInput:
    """One kind of bad input: the command, the files it reads, what its line must say."""

    kind: str
    argv: tuple[str, ...]
    problem: str  # the part of the line naming what is wrong
    fix: str  # the part naming what to do
    files: dict[str, str | bytes] = field(default_factory=dict)
    locked: tuple[str, ...] = ()  # of those, made unreadable (mode 000) while the case runs

    @property
    def command(self) -> str:
        return self.argv[0] if self.argv[0] != "images" else "images push"


def run(*args: str) -> tuple[str, ...]:
    return ("run", "--results_root", f"{TMP}/results", "--benchmark", "synthetic_curves",
            "--method", "RS", *args)


def run_yaml(*args: str) -> tuple[str, ...]:
    return ("run", "--results_root", f"{TMP}/results", "--benchmark", f"{TMP}/mine.yaml",
            "--method", "RS", *args)


def launch(*args: str) -> tuple[str, ...]:
    return ("launch", "--benchmark", "synthetic_curves", "--method", "RS", "--experiment_tag",
            "study", *SAGEMAKER, *args)


TRAIN = {"train.py": ""}
NOT_UTF8 = "café".encode("latin-1")

CASES: tuple[BadInput, ...] = (
    # --- stbench run: flags --------------------------------------------------------------
    BadInput("wrong type", run("--n_workers", "two"),
             "--n_workers/--n-workers: invalid int value: 'two'", "see `stbench run --help`"),
    BadInput("negative master seed", run("--random_seed", "-5"),
             "--random_seed must be a non-negative integer, got -5", "leave it out to draw one"),
    BadInput("not a number", run("--max_wallclock_time", "nan"),
             "--max_wallclock_time must be a finite number", "seconds"),
    BadInput("infinite budget", run("--max_wallclock_time", "inf"),
             "--max_wallclock_time must be a finite number", "seconds"),
    BadInput("huge seed count", run("--num_seeds", "1000000000"),
             "seeds 0..999999999 go beyond 999", "lower --num_seeds or --start_seed"),
    BadInput("negative seed", run("--start_seed", "-1"),
             "--start_seed must be non-negative, got -1", "--start_seed"),
    BadInput("zero failures allowed", run("--max_failures", "0"),
             "--max_failures must be at least 1, got 0", "at least 1"),
    BadInput("misspelled method", ("run", "--benchmark", "synthetic_curves", "--method", "ASAH"),
             "unknown method 'ASAH'", "did you mean 'ASHA'?"),
    BadInput("misspelled method setting", ("run", "--benchmark", "synthetic_curves", "--method",
                                           "ASHA", "--method_args", "ASHA:reduction=4"),
             "ASHA has no setting 'reduction'", "did you mean 'reduction_factor'?"),
    BadInput("method setting out of range", ("run", "--benchmark", "synthetic_curves",
                                             "--method", "ASHA", "--method_args",
                                             "ASHA:reduction_factor=1"),
             "ASHA setting reduction_factor must be > 1, got 1", "must be > 1"),
    BadInput("method setting beyond the benchmark", (
        "run", "--benchmark", "synthetic_curves", "--method", "ASHA", "--method_args",
        "ASHA:grace_period=50"),
             "ASHA(grace_period=50) does not fit benchmark synthetic_curves",
             "change its --method_args"),
    BadInput("misspelled benchmark", ("run", "--benchmark", "synthetic_curve", "--method", "RS"),
             "unknown benchmark 'synthetic_curve'", "did you mean 'synthetic_curves'?"),
    BadInput("misspelled flag", run("--n_worker", "3"),
             "has no argument '--n_worker'", "did you mean '--n_workers'?"),
    BadInput("misspelled benchmark argument", run("--epoch", "3"),
             "has no argument '--epoch'", "did you mean '--epochs'?"),
    BadInput("benchmark argument of the wrong type", run("--epochs", "many"),
             "--epochs 'many' does not fit benchmark 'synthetic_curves'", "expected a int"),
    BadInput("benchmark argument out of range", run("--x", "7"),
             "--x '7' does not fit benchmark 'synthetic_curves'", "allowed range is [-3.0, 3.0]"),
    BadInput("experiment tag too long", run("--experiment_tag", "t" * 200),
             "--experiment_tag is 200 characters long", "at most 128"),
    BadInput("experiment tag with a path", run("--experiment_tag", "../elsewhere"),
             "--experiment_tag '../elsewhere' may use only letters, digits and '-'",
             "letters, digits and '-'"),
    BadInput("unreadable results folder", run(), "results root", "pass --results_root with a "
             "folder you can write", {"results/keep": ""}, locked=("results",)),
    BadInput("benchmark in an unreadable folder",
             ("run", "--benchmark", f"{TMP}/locked/mine.yaml", "--method", "RS"),
             "cannot read benchmark file", "Permission denied",
             {"locked/train.py": "", "locked/mine.yaml": bench_yaml()}, locked=("locked",)),
    BadInput("resume with a metadata.json that is not UTF-8",
             run("--experiment_tag", "old", "--resume"),
             "metadata.json is not UTF-8 JSON", "choose a new --experiment_tag",
             {"results/old/synthetic_curves/RS/0/metadata.json": b'{"status": "r\xe9"}'}),
    # --- benchmark YAML ------------------------------------------------------------------
    BadInput("benchmark YAML not UTF-8", run_yaml(), "mine.yaml is not UTF-8 text",
             "save it as UTF-8", {**TRAIN, "mine.yaml": b"name: " + NOT_UTF8 + b"\n"}),
    BadInput("unknown YAML field", run_yaml(), "field 'metrc': unknown field",
             "did you mean 'metric'?",
             {**TRAIN, "mine.yaml": bench_yaml("name: mine\nmetrc: loss\n")}),
    BadInput("YAML field of the wrong type", run_yaml(), "field 'n_workers': expected int",
             "'four'", {**TRAIN, "mine.yaml": bench_yaml(
                 fields=BENCH_FIELDS.replace("n_workers: 1", "n_workers: four"))}),
    BadInput("YAML value out of range", run_yaml(), "field 'n_workers': must be positive",
             "positive", {**TRAIN, "mine.yaml": bench_yaml(
                 fields=BENCH_FIELDS.replace("n_workers: 1", "n_workers: 0"))}),
    BadInput("infinite YAML budget", run_yaml(), "field 'max_wallclock_time': must be a finite",
             "positive number", {**TRAIN, "mine.yaml": bench_yaml(
                 fields=BENCH_FIELDS.replace("max_wallclock_time: 10",
                                             "max_wallclock_time: .inf"))}),
    BadInput("benchmark name with a path", run_yaml(), "field 'name': '../../escape' may use",
             "letters, digits, '_' and '-'",
             {**TRAIN, "mine.yaml": bench_yaml("name: ../../escape\n")}),
    BadInput("benchmark name too long", run_yaml(), "field 'name': is 70 characters long",
             "at most 64", {**TRAIN, "mine.yaml": bench_yaml(f"name: {'n' * 70}\n")}),
    BadInput("more than 100 hyperparameters", run_yaml("--backend", "docker"),
             "a job would get 103 hyperparameters", "SageMaker allows at most 100",
             {**TRAIN, "mine.yaml": bench_yaml(space=f"  epochs: 2\n{MANY_ENTRIES}")}),
    BadInput("hyperparameter over 2500 characters", run_yaml("--backend", "docker"),
             "hyperparameter 'text' can be 2501 characters", "SageMaker allows at most 2500",
             {**TRAIN, "mine.yaml": bench_yaml(space=f"  epochs: 2\n  text: {LONG_VALUE}\n")}),
    BadInput("hyperparameter with a line break", run_yaml("--backend", "docker"),
             "hyperparameter 'note' does not match SageMaker's pattern '.*' (it has a line "
             "break)", "remove it",
             {**TRAIN, "mine.yaml": bench_yaml(space='  epochs: 2\n  note: "two\\nlines"\n')}),
    # --- study files (stbench launch) ----------------------------------------------------
    BadInput("study file not UTF-8", ("launch", f"{TMP}/study.yaml"),
             "study.yaml is not UTF-8 text", "save it as UTF-8",
             {"study.yaml": STUDY.encode() + b"# " + NOT_UTF8 + b"\n"}),
    BadInput("unknown study key", ("launch", f"{TMP}/study.yaml"), "unknown key 'method'",
             "did you mean 'methods'?",
             {"study.yaml": STUDY.replace("methods:", "method:")}),
    BadInput("study value of the wrong type", ("launch", f"{TMP}/study.yaml"),
             "'num_seeds' must be an integer, got 'two'", "num_seeds",
             {"study.yaml": STUDY + "num_seeds: two\n"}),
    BadInput("study list given as a word", ("launch", f"{TMP}/study.yaml"),
             "'methods' must be a list of names, got 'RS'", "methods: [RS]",
             {"study.yaml": STUDY.replace("methods: [RS]", "methods: RS")}),
    BadInput("study override of the wrong type", ("launch", f"{TMP}/study.yaml"),
             "n_workers must be an integer, got 'four'", "fix the study file",
             {"study.yaml": STUDY + "overrides: {n_workers: four}\n"}),
    BadInput("misspelled study override", ("launch", f"{TMP}/study.yaml"),
             "override 'n_worker' is not a `stbench run` flag", "did you mean 'n_workers'?",
             {"study.yaml": STUDY + "overrides: {n_worker: 2}\n"}),
    BadInput("study file is a folder", ("launch", f"{TMP}/studies"),
             "cannot read study file", "Is a directory", {"studies/keep": ""}),
    BadInput("unreadable study file", ("launch", f"{TMP}/study.yaml"),
             "cannot read study file", "Permission denied", {"study.yaml": STUDY},
             locked=("study.yaml",)),
    # --- stbench launch ------------------------------------------------------------------
    BadInput("instance cap out of range", launch("--max_instances", "-3"),
             "--max_instances must be at least 1, got -3", "at least 1"),
    BadInput("orchestrator hyperparameter over 2500 characters",
             ("launch", "--benchmark", f"{TMP}/mine.yaml", "--method", "RS",
              "--experiment_tag", "study", *SAGEMAKER, "--text", LONG_VALUE),
             "hyperparameter 'text' can be 2501 characters", "SageMaker allows at most 2500",
             {**TRAIN, "mine.yaml": bench_yaml(space="  epochs: 2\n  text: short\n")}),
    BadInput("launch without a tag", ("launch", "--benchmark", "synthetic_curves", "--method",
                                      "RS", *SAGEMAKER),
             "remote launch needs --experiment_tag", "--experiment_tag"),
    # --- status, results, cleanup --------------------------------------------------------
    BadInput("malformed region", ("status", "--experiment_tag", "study", "--region", "us_east"),
             "--region: 'us_east' is not an AWS region name", "e.g. us-east-1"),
    BadInput("malformed region", ("results", "--experiment_tag", "study", "--results_root",
                                  f"{TMP}/results", "--region", "us east 1"),
             "--region: 'us east 1' is not an AWS region name", "e.g. us-east-1"),
    BadInput("malformed region", ("cleanup", "--experiment_tag", "study", "--yes",
                                  "--region", "US-EAST-1!"),
             "--region: 'US-EAST-1!' is not an AWS region name", "e.g. us-east-1"),
    BadInput("tag with no letters", ("status", "--experiment_tag=---"),
             "experiment tag '---' has no letters or digits", "pass the study's tag"),
    BadInput("cleanup with no terminal to ask", ("cleanup", "--experiment_tag", "study"),
             "stdin is not a terminal", "pass --yes"),
    # --- stbench images push -------------------------------------------------------------
    BadInput("malformed image tag", ("images", "push", "--registry", "127.0.0.1:5000",
                                     "--tag", "v1:beta"),
             "--tag: 'v1:beta' is not a Docker tag", "letters, digits, '_', '.' and '-'"),
    BadInput("image tag too long", ("images", "push", "--registry", "127.0.0.1:5000",
                                    "--tag", "v" * 129),
             "is not a Docker tag", "at most 128"),
    BadInput("malformed registry", ("images", "push", "--registry", "bad host!"),
             "--registry 'bad host!' is not HOST[:PORT][/path]", "e.g. 127.0.0.1:5000"),
    BadInput("unknown role", ("images", "push", "--roles", "trainr"),
             "invalid choice: 'trainr'", "see `stbench images push --help`"),
    # --- any command ---------------------------------------------------------------------
    BadInput("misspelled command", ("rnu", "--benchmark", "synthetic_curves"),
             "unknown command 'rnu'", "did you mean 'run'?"),
)


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


def prepare(case: BadInput, folder: Path) -> list[str]:
    """Write the case's files into `folder`; its argv with the folder filled in."""
    for relative, content in case.files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content.replace(TMP, str(folder)))
    return [arg.replace(TMP, str(folder)) for arg in case.argv]


@contextlib.contextmanager
def nowhere_to_write(aws: dict[str, str] | None = None) -> Iterator[None]:
    """AWS on a closed port (or the `aws` environment given), Docker on a missing socket."""
    saved = dict(os.environ)
    os.environ.update(aws or DEAD_AWS, DOCKER_HOST="unix:///nonexistent/stbench-no-engine.sock")
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_case(case: BadInput, argv: list[str], cwd: Path,
             aws: dict[str, str] | None = None) -> Outcome:
    """`stbench ARGV` run in `cwd`: in this process, or with locked paths in a process that
    file permissions bind (root without the capabilities that override them)."""
    if case.locked:
        return run_locked(case, argv, cwd, aws)
    return run_here(argv, cwd, aws)


def run_locked(case: BadInput, argv: list[str], cwd: Path,
               aws: dict[str, str] | None = None) -> Outcome:
    unbound = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    command = [*(unbound if os.geteuid() == 0 else []), str(STBENCH), *argv]
    with nowhere_to_write(aws):
        env = dict(os.environ)
    modes = {path: (cwd / path).stat().st_mode for path in case.locked}
    try:
        for path in case.locked:
            (cwd / path).chmod(0)
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=120)
    finally:
        for path, mode in modes.items():
            (cwd / path).chmod(mode)
    return Outcome(done.returncode, done.stdout, done.stderr)


def run_here(argv: list[str], cwd: Path, aws: dict[str, str] | None = None) -> Outcome:
    """The CLI in this process, as `stbench ARGV` run in `cwd` would behave."""
    out, err = io.StringIO(), io.StringIO()
    here, stdin = Path.cwd(), sys.stdin
    os.chdir(cwd)
    sys.stdin = io.StringIO()  # no terminal: commands that would ask must say so
    try:
        with nowhere_to_write(aws), contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        os.chdir(here)
        sys.stdin = stdin
    return Outcome(code, out.getvalue(), err.getvalue())


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its content, and every folder: what a case may not
    change."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"/"
            for p in sorted(folder.rglob("*"))}
