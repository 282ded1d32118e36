"""IAM on the local SageMaker endpoint, with the policies of stbench's CloudFormation template.

One endpoint serves the module. The template is deployed as AWS users deploy it, and the
launching user's credentials (an IAM user holding the stack's UserPolicy) push the images
and launch a study, whose orchestrator job creates its trials as the execution role. Each
negative test deploys a copy of the template with one statement deleted, in a region of its
own (the bucket and the repositories are regional, the role and the policies are named after
RoleName), and checks the one line stbench gives, from the command that meets the denial.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from user_benchmark import write_user_benchmark

from stbench.emulator import Emulator, EmulatorConfig
from stbench.emulator.account import deploy_stack, launching_user
from stbench.launch import iam_template

pytestmark = [pytest.mark.docker, pytest.mark.slow]

STBENCH = Path(sys.executable).parent / "stbench"
REPO = Path(__file__).resolve().parents[2]
PUSHED = re.compile(r"^(trainer|orchestrator|trainer-gpu) +(\S+)$", re.MULTILINE)
REGION = "us-east-1"
CONFIG = EmulatorConfig(cold_start_seconds=0.5, warm_start_seconds=0.1, log_delay_seconds=1.0,
                        checkpoint_sync_seconds=2.0, stop_grace_seconds=5.0)
STUDY = ["--benchmark", "synthetic_curves", "--method", "RS", "--num_seeds", "1",
         "--n_workers", "1", "--max_wallclock_time", "8", "--epochs", "2",
         "--epoch_duration", "0.1", "--random_seed", "3"]


@dataclass(frozen=True)
class Account:
    """A deployed stack and the environment of its launching user (a shell after
    `stbench emulator`, with no other AWS set-up of the host)."""

    environment: dict[str, str]
    outputs: dict[str, str]

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([str(STBENCH), *args], capture_output=True, text=True,
                              env=self.environment, timeout=timeout)

    def client(self, service: str) -> Any:
        env = self.environment
        return boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"],  # type: ignore[call-overload]
                            region_name=env["AWS_DEFAULT_REGION"],
                            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])

    def make(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """A Makefile target run from the repository, as a user types it there."""
        return subprocess.run(["make", *args], capture_output=True, text=True, cwd=REPO,
                              env=self.environment, timeout=timeout)

    def launch(self, image: str, tag: str) -> subprocess.CompletedProcess:
        return self.run("launch", *STUDY, "--image", image, "--experiment_tag", tag,
                        "--role", self.outputs["Role"], "--s3_root", self.outputs["S3Root"])


@dataclass(frozen=True)
class Endpoint:
    emulator: Emulator
    account: Account
    images: dict[str, str]  # role -> the URI `stbench images push` printed
    folder: Path

    def admin(self, region: str) -> dict[str, str]:
        return {**self.emulator.environment(), "AWS_DEFAULT_REGION": region}


def user_account(endpoint_env: dict[str, str], home: Path, outputs: dict[str, str],
                 user: str) -> Account:
    (home / "empty").write_text("")
    kept = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    credentials = launching_user(endpoint_env, outputs["UserPolicy"], name=user)
    environment = {**kept, "AWS_CONFIG_FILE": str(home / "empty"),
                   "AWS_SHARED_CREDENTIALS_FILE": str(home / "empty"),
                   "AWS_EC2_METADATA_DISABLED": "true", **endpoint_env, **credentials}
    return Account(environment, outputs)


@pytest.fixture(scope="module")
def endpoint(images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Endpoint]:
    folder = tmp_path_factory.mktemp("iam")
    with Emulator(CONFIG) as emulator:
        admin = emulator.environment()
        account = user_account(admin, folder, deploy_stack(admin), "stbench-user")
        # the README's commands, verbatim, in the launching user's shell
        built = account.make("build")
        assert built.returncode == 0, built.stderr[-2000:]
        pushed = account.make("push", timeout=600)
        assert pushed.returncode == 0, pushed.stderr[-2000:]
        uris = dict(PUSHED.findall(pushed.stdout))
        assert uris.keys() >= {"trainer", "orchestrator"}, pushed.stdout
        yield Endpoint(emulator, account, uris, folder)


def with_statement_cut(endpoint: Endpoint, case: str, region: str, policy: str,
                       sid: str) -> Account:
    """The template less one statement, deployed as stack `stbench-<case>` in `region`."""
    template = iam_template.load()
    document = template["Resources"][policy]["Properties"]["PolicyDocument"]
    kept = [s for s in document["Statement"] if s["Sid"] != sid]
    assert len(kept) == len(document["Statement"]) - 1, sid
    document["Statement"] = kept
    path = endpoint.folder / f"{case}.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    admin = endpoint.admin(region)
    outputs = deploy_stack(admin, {"RoleName": f"stbench-{case}"}, stack=f"stbench-{case}",
                           template=path)
    return user_account(admin, endpoint.folder, outputs, f"stbench-user-{case}")


def jobs(account: Account) -> dict[str, dict[str, Any]]:
    sm = account.client("sagemaker")
    names = [s["TrainingJobName"] for page in sm.get_paginator("list_training_jobs").paginate()
             for s in page["TrainingJobSummaries"]]
    return {name: sm.describe_training_job(TrainingJobName=name) for name in names}


def wait_ended(account: Account, timeout: float = 300) -> dict[str, dict[str, Any]]:
    """Every job of the account's region once none is running."""
    deadline = time.monotonic() + timeout
    while True:
        found = jobs(account)
        if found and all(d["TrainingJobStatus"] not in ("InProgress", "Stopping")
                         for d in found.values()):
            return found
        assert time.monotonic() < deadline, {n: d["TrainingJobStatus"] for n, d in found.items()}
        time.sleep(2)


def test_the_template_s_user_launches_a_study_whose_jobs_run_as_the_role(
        endpoint: Endpoint) -> None:
    account = endpoint.account
    launched = account.launch(endpoint.images["trainer"], "iam-ok")
    assert launched.returncode == 0, launched.stderr[-3000:]
    ended = wait_ended(account)
    orchestrator = next(d for n, d in ended.items() if n.endswith("-o00"))
    assert orchestrator["TrainingJobStatus"] == "Completed", orchestrator.get("FailureReason")
    trials = [d for n, d in ended.items() if not n.endswith("-o00")]
    assert trials and all(d["RoleArn"] == account.outputs["Role"] for d in trials)
    status = account.run("status", "--experiment_tag", "iam-ok")
    assert status.returncode == 0, status.stderr
    assert "Completed" in status.stdout and "no permission" not in status.stdout


def test_a_job_s_containers_hold_its_role_s_credentials_not_the_caller_s(
        endpoint: Endpoint) -> None:
    """Created by the administrator, the job's own boto3 calls are the role's: a call its
    policy does not allow is denied inside the job."""
    account, admin = endpoint.account, endpoint.admin(REGION)
    sm = boto3.client("sagemaker", endpoint_url=admin["AWS_ENDPOINT_URL"], region_name=REGION,
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    bucket = account.outputs["S3Root"].removeprefix("s3://").split("/")[0]
    script = ("import boto3\n"
              "print('caller', boto3.client('sts').get_caller_identity()['Arn'])\n"
              "try:\n"
              "    boto3.client('iam').create_user(UserName='from-a-job')\n"
              "except Exception as err:\n"
              "    print('denied', err)\n")
    name = "iam-whoami"
    sm.create_training_job(
        TrainingJobName=name, RoleArn=account.outputs["Role"],
        AlgorithmSpecification={"TrainingImage": endpoint.images["trainer"],
                                "TrainingInputMode": "File",
                                # one line: the field's pattern excludes newlines
                                "ContainerEntrypoint": ["python", "-c", f"exec({script!r})"]},
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/stbench/whoami"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1,
                        "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 120})
    deadline = time.monotonic() + 120
    while sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(1)
    time.sleep(CONFIG.log_delay_seconds + 1)
    logs = boto3.client("logs", endpoint_url=admin["AWS_ENDPOINT_URL"], region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")
    lines = [e["message"] for e in logs.filter_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=name)["events"]]
    role_name = account.outputs["Role"].split("/")[-1]
    assert f"caller arn:aws:sts::123456789012:assumed-role/{role_name}/SageMaker" in lines
    assert any(line.startswith("denied") and "iam:CreateUser" in line for line in lines)


def test_without_the_user_s_pass_role_launch_stops_with_one_line(endpoint: Endpoint) -> None:
    account = with_statement_cut(endpoint, "nopass", "us-west-2", "UserPolicy",
                                 "PassExecutionRole")
    launched = account.launch(endpoint.images["trainer"], "iam-nopass")
    assert launched.returncode == 2, launched.stderr[-3000:]
    last = launched.stderr.strip().splitlines()[-1]
    assert last.startswith(f"stbench: error: no permission for iam:PassRole on "
                           f"{account.outputs['Role']}: grant it to "
                           "arn:aws:iam::123456789012:user/stbench-user-nopass"), last
    assert "Traceback" not in launched.stderr
    assert jobs(account) == {}  # nothing created, nothing left running


ROLE_CUTS = [  # (case, region, statement cut from the role, the line's action and resource)
    ("nopull", "eu-west-1", "PullAndCheckImages",
     "ecr:BatchGetImage on arn:aws:ecr:eu-west-1:123456789012:repository/stbench-orchestrator"),
    ("nowrite", "ap-southeast-2", "StudyObjects",
     "s3:PutObject on arn:aws:s3:::stbench-123456789012-ap-southeast-2/stbench/iam-nowrite/"),
    ("nologs", "ca-central-1", "JobLogs",
     "logs:CreateLogStream on arn:aws:logs:ca-central-1:123456789012:log-group:"
     "/aws/sagemaker/TrainingJobs"),
    ("nocreate", "eu-north-1", "TrialJobs",  # the orchestrator job's own call, as the role
     "sagemaker:CreateTrainingJob on arn:aws:sagemaker:eu-north-1:123456789012:training-job/"
     "iam-nocreate-"),
]


@pytest.mark.parametrize(("case", "region", "sid", "named"), ROLE_CUTS,
                         ids=[cut[0] for cut in ROLE_CUTS])
def test_without_a_role_statement_the_job_fails_and_status_names_it(
        endpoint: Endpoint, case: str, region: str, sid: str, named: str) -> None:
    account = with_statement_cut(endpoint, case, region, "ExecutionRolePolicy", sid)
    tag = f"iam-{case}"
    launched = account.launch(endpoint.images["trainer"], tag)
    assert launched.returncode == 0, launched.stderr[-3000:]  # the user may do all of it
    ended = wait_ended(account)  # nothing left running
    orchestrator = ended[f"{tag}-synthetic-curves-rs-0-o00"]
    assert orchestrator["TrainingJobStatus"] == "Failed", {
        n: (d["TrainingJobStatus"], d.get("FailureReason")) for n, d in ended.items()}
    status = account.run("status", "--experiment_tag", tag)
    assert status.returncode == 0, status.stderr
    last = status.stdout.splitlines()[-1]
    assert f": no permission for {named}" in last, status.stdout
    assert f"grant it to arn:aws:sts::123456789012:assumed-role/stbench-{case}/SageMaker" in last


def test_the_headline_make_push_and_make_remote_verbatim_as_the_template_s_user(
        endpoint: Endpoint, tmp_path: Path) -> None:
    """README's AWS commands as typed, with the stack's outputs: `make build` and `make push`
    (the fixture: ECR of the endpoint, no REGISTRY=), `make remote` of a user benchmark
    folder with an input channel and METHODS="ASHA RS", then status, results and cleanup."""
    account = endpoint.account
    benchmark = write_user_benchmark(tmp_path, name="my_bench")
    study_root = account.outputs["S3Root"]
    bucket, prefix = study_root.removeprefix("s3://").split("/", 1)
    account.client("s3").put_object(Bucket=bucket, Key=f"{prefix}/inputs/extra/scale.txt",
                                    Body=b"3\n")
    launched = account.make(
        "remote", f"BENCH={benchmark}", "METHODS=ASHA RS", "SEEDS=1", "BUDGET=10",
        "N_WORKERS=1", f"ROLE={account.outputs['Role']}", f"S3_ROOT={study_root}",
        f"IMAGE={endpoint.images['trainer']}",
        f"ARGS=--inputs extra={study_root}/inputs/extra/ --sleep 0.2")
    assert launched.returncode == 0, launched.stderr[-3000:]
    names = [line for line in launched.stdout.splitlines() if line.endswith("-o00")]
    assert names == ["my-bench-my-bench-asha-0-o00", "my-bench-my-bench-rs-0-o00"], (
        launched.stdout)

    ended = wait_ended(account)
    for name in names:
        assert ended[name]["TrainingJobStatus"] == "Completed", ended[name].get("FailureReason")
    trials = {n: d for n, d in ended.items() if n.startswith("my-bench-") and n not in names}
    assert trials and all(d["RoleArn"] == account.outputs["Role"] for d in trials.values())
    assert all(d["TrainingJobStatus"] == "Completed" for d in trials.values())

    status = account.run("status", "--experiment_tag", "my-bench")
    assert status.returncode == 0, status.stderr
    rows = [line for line in status.stdout.splitlines() if "my_bench" in line]
    assert len(rows) == 2 and all("Completed" in row for row in rows), status.stdout
    results = account.run("results", "--experiment_tag", "my-bench", "--results_root",
                          str(tmp_path / "results"))
    assert results.returncode == 0, results.stderr[-2000:]
    table = [line.split() for line in results.stdout.splitlines()
             if line.startswith("my_bench ")]
    assert sorted(word for row in table for word in row if word in ("ASHA", "RS")) == [
        "ASHA", "RS"], results.stdout
    reports = [json.loads(line)["metrics"] for path in (tmp_path / "results").rglob(
        "results.jsonl") for line in path.read_text().splitlines()]
    scales = {report["scale"] for report in reports if report}
    assert scales == {3.0}, reports  # the channel reached the trials
    cleaned = account.run("cleanup", "--experiment_tag", "my-bench", "--yes")
    assert cleaned.returncode == 0, cleaned.stderr[-2000:]
    left = jobs(account)
    assert not [n for n, d in left.items() if n.startswith("my-bench-") and (
        d["TrainingJobStatus"] in ("InProgress", "Stopping")
        or (d.get("WarmPoolStatus") or {}).get("Status") in ("Available", "InUse"))]
