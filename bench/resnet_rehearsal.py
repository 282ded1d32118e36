"""resnet_cifar10's remote path once, on the local SageMaker endpoint, as a user types it.

    python bench/resnet_rehearsal.py [--write]

1. `stbench emulator` starts (a subprocess, as in a second terminal), deploys stbench's
   CloudFormation stack with IAM enforced, and prints its user's credentials, ROLE and S3_ROOT,
   which every command below uses;
2. `make build GPU=1` builds the GPU trainer image (CUDA PyTorch, several GB) and
   `make push` sends the three images to the endpoint's ECR (no REGISTRY=);
3. generated data in CIFAR-10's layout (`cifar-10-python.tar.gz`, a few hundred images) goes
   to the endpoint's S3 and reaches the trials as the `dataset` input channel;
4. `make remote BENCH=resnet_cifar10 ...` launches one orchestrator job whose trials are
   training jobs of the GPU image, one epoch each, on the CPU (the CUDA build runs there);
5. `stbench status` and `stbench results` read the study back, `stbench cleanup` ends it.

`IMAGE_TAG` gives the images a tag of their own, so that a commit made while the bench runs
does not change the `<version>-<git sha>` tag between `make build` and `make push`.
It checks that the trial jobs ran the `-gpu` sibling of the pushed trainer image and
completed. Not part of CI (the GPU image is about 6.7 GB). `--write` puts the outcome into
docs/emulator.md's section "resnet_cifar10's remote path".
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from docs_section import publish  # noqa: E402

BIN = REPO / ".venv" / "bin"
DOC = REPO / "docs" / "emulator.md"
SECTION = "resnet_cifar10's remote path"
TAG = "resnet-rehearsal"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def start_endpoint() -> tuple[subprocess.Popen[str], dict[str, str]]:
    """`stbench emulator --port 0`: it deploys stbench's CloudFormation stack and prints two
    `export` lines, the stack user's environment and the stack's ROLE and S3_ROOT."""
    process = subprocess.Popen([str(BIN / "stbench"), "emulator", "--port", "0",
                                "--cold_start_seconds", "1"], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    env: dict[str, str] = {}
    for _ in range(2):
        line = process.stdout.readline()
        if not line.startswith("export "):
            process.terminate()
            raise SystemExit(f"stbench emulator did not start: {line!r}")
        env.update(pair.split("=", 1) for pair in line.removeprefix("export ").split())
    return process, env


def run(command: list[str], env: dict[str, str], timeout: float = 3600) -> str:
    """One command as a user runs it; its stderr streams through, its stdout is returned."""
    log("$ " + " ".join(command))
    started = time.monotonic()
    result = subprocess.run(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True,
                            timeout=timeout)
    log(f"  exit {result.returncode} after {time.monotonic() - started:.0f} s")
    if result.returncode != 0:
        raise SystemExit(f"{command[0]} {command[1] if len(command) > 1 else ''} failed "
                         f"(exit {result.returncode}); output:\n{result.stdout[-3000:]}")
    return result.stdout


def tiny_cifar10_archive() -> bytes:
    """`cifar-10-python.tar.gz` with generated images in CIFAR-10's batch format."""
    from stbench.benchmarks.cifar10_data import write_tiny_cifar10

    with tempfile.TemporaryDirectory() as folder:
        write_tiny_cifar10(Path(folder), n_train=300, n_test=100)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            archive.add(Path(folder) / "cifar-10-batches-py", arcname="cifar-10-batches-py")
        return buffer.getvalue()


def wait_for_orchestrator(sm: Any, timeout: float = 1800) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        names = [s["TrainingJobName"] for s in sm.list_training_jobs(
            NameContains=TAG, MaxResults=100)["TrainingJobSummaries"]]
        orchestrators = [n for n in names if n.endswith("-o00")]
        if orchestrators:
            job = sm.describe_training_job(TrainingJobName=orchestrators[0])
            if job["TrainingJobStatus"] not in ("InProgress", "Stopping"):
                return job
        if time.monotonic() > deadline:
            raise SystemExit(f"the orchestrator job did not end in {timeout:g} s")
        time.sleep(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"update {DOC.name}")
    parser.add_argument("--budget", type=int, default=180, help="the study's seconds")
    args = parser.parse_args()
    started = datetime.now(UTC)
    endpoint, aws = start_endpoint()
    env = {**os.environ, **aws, "AWS_EC2_METADATA_DISABLED": "true"}
    env.pop("AWS_PROFILE", None)
    os.environ.update(env)  # this process's boto3 calls go to the endpoint too, never to AWS
    os.environ.pop("AWS_PROFILE", None)
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:"), env["AWS_ENDPOINT_URL"]
    try:
        import boto3

        session = boto3.session.Session(
            aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
            region_name=aws["AWS_DEFAULT_REGION"])
        clock = time.monotonic()
        run(["make", "build", "GPU=1", f"IMAGE_TAG={TAG}"], env)
        build_seconds = time.monotonic() - clock
        clock = time.monotonic()
        pushed = run(["make", "push", f"IMAGE_TAG={TAG}"], env)
        push_seconds = time.monotonic() - clock
        uris = dict(re.findall(r"^(\S+) +(\S+:\S+)$", pushed, re.MULTILINE))
        if "trainer-gpu" not in uris:
            raise SystemExit(f"make push printed no trainer-gpu URI:\n{pushed}")
        bucket, prefix = aws["S3_ROOT"].removeprefix("s3://").split("/", 1)
        key = f"{prefix}/inputs/cifar10/cifar-10-python.tar.gz"
        session.client("s3").put_object(Bucket=bucket, Key=key, Body=tiny_cifar10_archive())
        extra = f"--inputs dataset=s3://{bucket}/{key} --epochs 1 --batch_size 32"
        launched = run(["make", "remote", "BENCH=resnet_cifar10", "METHODS=RS", "SEEDS=1",
                        f"BUDGET={args.budget}", "N_WORKERS=1", f"ROLE={aws['ROLE']}",
                        f"S3_ROOT={aws['S3_ROOT']}", f"IMAGE={uris['trainer']}",
                        f"TAG={TAG}", f"ARGS={extra}"], env)
        log(launched.strip())
        sm = session.client("sagemaker")
        orchestrator = wait_for_orchestrator(sm)
        trials = [sm.describe_training_job(TrainingJobName=s["TrainingJobName"])
                  for s in sm.list_training_jobs(NameContains=TAG, MaxResults=100)[
                      "TrainingJobSummaries"]
                  if not s["TrainingJobName"].endswith("-o00")]
        status = run([str(BIN / "stbench"), "status", "--experiment_tag", TAG], env)
        results = run([str(BIN / "stbench"), "results", "--experiment_tag", TAG,
                       "--results_root", str(REPO / "build" / "rehearsal-results")], env)
        run([str(BIN / "stbench"), "cleanup", "--experiment_tag", TAG, "--yes"], env)
    finally:
        endpoint.terminate()
        endpoint.wait(timeout=300)
    images = sorted({t["AlgorithmSpecification"]["TrainingImage"] for t in trials})
    ended = Counter(t["TrainingJobStatus"] for t in trials)  # Stopped: at the budget's end
    lines = [
        f"## {SECTION}", "",
        f"Run {started:%Y-%m-%d %H:%M} UTC with `python bench/resnet_rehearsal.py --write`: "
        f"`make build GPU=1 IMAGE_TAG={TAG}` took {build_seconds:.0f} s, "
        f"`make push IMAGE_TAG={TAG}` (three images to the endpoint's ECR, as the stack's "
        f"user) {push_seconds:.0f} s. The orchestrator job ended "
        f"{orchestrator['TrainingJobStatus']}"
        + (f" ({orchestrator.get('FailureReason')})" if orchestrator.get("FailureReason")
           else "")
        + f"; of its {len(trials)} trial jobs "
        + ", ".join(f"{count} ended {status}" for status, count in sorted(ended.items()))
        + " (a trial running when the budget ends is stopped), all on "
        + ", ".join(f"`{image}`" for image in images) + ".",
        "", "`stbench status`:", "", "```", status.strip(), "```", "",
        "`stbench results`:", "", "```", results.strip(), "```"]
    publish(lines, args.write, DOC)
    ok = (orchestrator["TrainingJobStatus"] == "Completed" and ended["Completed"] > 0
          and ended["Failed"] == 0 and all(i.startswith(uris["trainer-gpu"].split(":")[0])
                                           for i in images))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
