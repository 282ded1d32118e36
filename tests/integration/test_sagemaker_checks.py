"""SageMaker set-up checks against moto: every broken piece is one line naming the fix.

moto's ``mock_aws`` serves STS, IAM, S3 and ECR in-process, so nothing reaches AWS. Errors
moto cannot produce (403s, rejected tokens, no network) are injected with a botocore
``before-call`` handler, which answers a call the way the service would.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

from stbench.backends.jobs.sagemaker_checks import CheckedSetup, check_sagemaker_setup
from stbench.model.errors import UserError
from stbench.model.spec import ExperimentSpec

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
ROLE = f"arn:aws:iam::{ACCOUNT}:role/stbench-sagemaker"
BUCKET = "stbench-results"
S3_ROOT = f"s3://{BUCKET}/studies/"
REPO = "stbench-trainer"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPO}:v1"
INSTANCE = "ml.m5.xlarge"
TRUST_SAGEMAKER = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}
MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1469,
               "digest": "sha256:" + "a" * 64},
    "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 2048,
                "digest": "sha256:" + "b" * 64}],
}
pytestmark = pytest.mark.usefixtures("isolated_aws_env")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A complete, valid setup in moto: role, bucket and a pushed image."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        session.client("iam").create_role(
            RoleName="stbench-sagemaker", AssumeRolePolicyDocument=json.dumps(TRUST_SAGEMAKER)
        )
        session.client("s3").create_bucket(Bucket=BUCKET)
        ecr = session.client("ecr")
        ecr.create_repository(repositoryName=REPO)
        pushed = ecr.put_image(repositoryName=REPO, imageManifest=json.dumps(MANIFEST),
                               imageTag="v1")
        yield {"session": session, "digest": pushed["image"]["imageId"]["imageDigest"]}


def check(session: boto3.session.Session, **overrides: Any) -> CheckedSetup:
    args = {"role_arn": ROLE, "s3_root": S3_ROOT, "image_uri": IMAGE, "instance_type": INSTANCE}
    return check_sagemaker_setup(session, **{**args, **overrides})


def one_line_error(action: Callable[[], Any], *needles: str) -> str:
    with pytest.raises(UserError) as info:
        action()
    message = str(info.value)
    assert "\n" not in message, message
    for needle in needles:
        assert needle in message, message
    return message


def answer(session: boto3.session.Session, service: str, operation: str, code: str,
           status: int) -> None:
    """Make the next ``service.operation`` call fail as AWS would, with ``code``."""
    def handler(**_: Any) -> tuple[Any, dict[str, Any]]:
        return SimpleNamespace(status_code=status, headers={}), {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}},
        }
    session.events.register(f"before-call.{service}.{operation}", handler)


# --- the valid setup ----------------------------------------------------------------------


def test_valid_setup_passes_and_reports_what_it_checked(aws: dict[str, Any]) -> None:
    setup = check(aws["session"])
    assert setup == CheckedSetup(region=REGION, account=ACCOUNT, role_arn=ROLE, bucket=BUCKET,
                                 prefix="studies", image_uri=IMAGE)


def test_image_by_digest_and_bucket_root_pass(aws: dict[str, Any]) -> None:
    by_digest = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPO}@{aws['digest']}"
    setup = check(aws["session"], image_uri=by_digest, s3_root=f"s3://{BUCKET}")
    assert (setup.prefix, setup.image_uri) == ("", by_digest)


def test_role_the_caller_may_not_read_is_not_a_blocker(aws: dict[str, Any]) -> None:
    """Users who may pass a role but not call iam:GetRole must still be able to run."""
    answer(aws["session"], "iam", "GetRole", "AccessDenied", 403)
    assert check(aws["session"]).role_arn == ROLE


# --- credentials and region ---------------------------------------------------------------


def test_no_credentials() -> None:
    session = boto3.session.Session(region_name=REGION)
    one_line_error(lambda: check(session), "no AWS credentials", "aws configure", "AWS_PROFILE")


def test_rejected_credentials(aws: dict[str, Any]) -> None:
    answer(aws["session"], "sts", "GetCallerIdentity", "InvalidClientTokenId", 403)
    one_line_error(lambda: check(aws["session"]), "InvalidClientTokenId", "aws configure")


def test_no_region(aws: dict[str, Any]) -> None:
    session = boto3.session.Session()
    assert session.region_name is None
    one_line_error(lambda: check(session), "no AWS region", "--region", "AWS_DEFAULT_REGION")


def test_unreachable_endpoint_names_the_region(aws: dict[str, Any]) -> None:
    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://sts.us-east-1.amazonaws.com")
    aws["session"].events.register("before-call.sts.GetCallerIdentity", unreachable)
    one_line_error(lambda: check(aws["session"]), "cannot reach AWS", REGION, "--region")


def test_unexpected_service_error_is_still_one_line(aws: dict[str, Any]) -> None:
    answer(aws["session"], "ecr", "DescribeImages", "ServerException", 500)
    one_line_error(lambda: check(aws["session"]), "ecr:DescribeImages failed", "ServerException")


# --- each missing or wrong piece ----------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        ({"role_arn": None}, ["no execution role", "--role ARN"]),
        ({"role_arn": "stbench-sagemaker"}, ["not an IAM role ARN", "arn:aws:iam::"]),
        ({"role_arn": f"arn:aws:iam::{ACCOUNT}:user/me"}, ["not an IAM role ARN"]),
        ({"role_arn": f"arn:aws:iam::{ACCOUNT}:role/nope"}, ["nope does not exist", "--role"]),
        ({"role_arn": "arn:aws:iam::999999999999:role/x"}, ["account 999999999999", "--role"]),
        ({"s3_root": None}, ["no S3 location", "--s3_root s3://"]),
        ({"s3_root": f"{BUCKET}/studies"}, ["not an S3 URI", "--s3_root"]),
        ({"s3_root": "s3://no-such-bucket/x"}, ["no-such-bucket does not exist", "aws s3 mb"]),
        ({"image_uri": None}, ["no trainer image", "make push", "--image"]),
        ({"image_uri": "stbench-trainer:latest"}, ["not an image URI of a registry", "make push"]),
        ({"image_uri": IMAGE.replace(REGION, "eu-west-1")}, ["eu-west-1", "--region"]),
        ({"image_uri": IMAGE.replace(":v1", ":v2")}, ["not found in ECR (no tag v2)", "make push"]),
        ({"image_uri": IMAGE.replace(":v1", "")}, ["not found in ECR (no tag latest)"]),
        ({"image_uri": IMAGE.replace(REPO, "other")}, ["(no repository other)", "make push"]),
        ({"image_uri": f"{IMAGE[:-3]}@sha256:{'c' * 64}"}, ["(no digest sha256:ccc", "make push"]),
        ({"instance_type": "ml.m5.xlarg"}, ["not a SageMaker training instance type",
                                            "e.g. ml.m5.xlarge"]),
    ],
)
def test_each_broken_piece_names_the_fix(
    aws: dict[str, Any], overrides: dict[str, Any], needles: list[str]
) -> None:
    one_line_error(lambda: check(aws["session"], **overrides), *needles)


def test_role_that_sagemaker_cannot_assume(aws: dict[str, Any]) -> None:
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                            "Action": "sts:AssumeRole"}]}
    aws["session"].client("iam").create_role(RoleName="ec2-only",
                                             AssumeRolePolicyDocument=json.dumps(trust))
    role = f"arn:aws:iam::{ACCOUNT}:role/ec2-only"
    one_line_error(lambda: check(aws["session"], role_arn=role),
                   "does not trust sagemaker.amazonaws.com", "trust policy")


def test_role_arn_with_the_wrong_path(aws: dict[str, Any]) -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/service/stbench-sagemaker"
    one_line_error(lambda: check(aws["session"], role_arn=role), f"--role {ROLE}")


def test_bucket_without_access(aws: dict[str, Any]) -> None:
    answer(aws["session"], "s3", "HeadBucket", "403", 403)
    one_line_error(lambda: check(aws["session"]), f"no access to S3 bucket {BUCKET}", "--s3_root")


def test_bucket_in_another_region(aws: dict[str, Any]) -> None:
    aws["session"].client("s3", region_name="eu-west-1").create_bucket(
        Bucket="eu-results", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    one_line_error(lambda: check(aws["session"], s3_root="s3://eu-results/x"),
                   "is in eu-west-1", "--region eu-west-1")


def test_image_repository_without_access(aws: dict[str, Any]) -> None:
    answer(aws["session"], "ecr", "DescribeImages", "AccessDeniedException", 400)
    one_line_error(lambda: check(aws["session"]), "no permission to read ECR", "ecr:DescribeImages")


def test_local_mistakes_are_reported_before_any_aws_call(aws: dict[str, Any]) -> None:
    """A typo must not wait on the network: STS is never called for it."""
    calls: list[str] = []
    aws["session"].events.register("before-call.*.*", lambda model, **_: calls.append(model.name))
    one_line_error(lambda: check(aws["session"], instance_type="ml.m5.xlarg"), "e.g. ml.m5.xl")
    one_line_error(lambda: check(aws["session"], image_uri="trainer:latest"), "make push")
    assert calls == []


@pytest.fixture
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's jobs end at once, never billed: poll them often, wait for no late metrics nor
    for billable times; and keep pytest's SIGTERM handler."""
    from stbench.backends.jobs import closing, sagemaker

    real_init = sagemaker.SageMakerJobService.__init__

    def fast_init(self: Any, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **{**kwargs, "poll_seconds": 0.05, "metrics_delay_seconds": 0})

    monkeypatch.setattr(sagemaker.SageMakerJobService, "__init__", fast_init)
    monkeypatch.setattr(closing, "BILLING_WAIT_SECONDS", 0.5)
    monkeypatch.setattr(signal, "signal", lambda *a: None)


@pytest.mark.usefixtures("fast_polls")
def test_cli_sagemaker_backend_checks_then_creates_tagged_jobs(
        aws: dict[str, Any], tmp_path: Path) -> None:
    """`stbench run --backend sagemaker` end to end against moto: the set-up passes its checks,
    trials become training jobs with the experiment's role, image, tags and S3 prefixes.
    moto completes jobs at once without logs, so each trial fails with a clear reason and
    the experiment stops at max_failures."""
    from stbench.cli.main import main

    code = main(["run", "--benchmark", "synthetic_curves", "--method", "RS", "--backend",
                 "sagemaker", "--role", ROLE, "--s3_root", S3_ROOT, "--image", IMAGE,
                 "--region", REGION, "--max_failures", "2", "--n_workers", "2",
                 "--max_wallclock_time", "60", "--experiment_tag", "moto", "--no_quota_check",
                 "--results_root", str(tmp_path)])
    assert code == 1  # the experiment ended at max_failures
    jobs = aws["session"].client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    assert len(jobs) >= 2
    job = aws["session"].client("sagemaker").describe_training_job(
        TrainingJobName=jobs[0]["TrainingJobName"])
    assert job["RoleArn"] == ROLE
    assert job["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert job["CheckpointConfig"]["S3Uri"].startswith(
        f"s3://{BUCKET}/studies/moto/synthetic_curves/RS/0/checkpoints/")
    rows = [json.loads(line) for line in
            (tmp_path / "moto" / "synthetic_curves" / "RS" / "0" / "results.jsonl")
            .read_text().splitlines()]
    assert rows and all("without reporting metric 'loss'" in r["failure_reason"] for r in rows)


def test_cli_sagemaker_backend_without_role_creates_nothing(
        aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from stbench.cli.main import main

    monkeypatch.setattr(signal, "signal", lambda *a: None)
    code = main(["run", "--benchmark", "synthetic_curves", "--method", "RS", "--backend",
                 "sagemaker", "--s3_root", S3_ROOT, "--image", IMAGE, "--region", REGION,
                 "--results_root", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--role" in err[0]
    assert not (tmp_path / "r").exists()
    assert aws["session"].client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []


def push_orchestrator(session: boto3.session.Session) -> None:
    ecr = session.client("ecr")
    ecr.create_repository(repositoryName="stbench-orchestrator")
    ecr.put_image(repositoryName="stbench-orchestrator", imageManifest=json.dumps(MANIFEST),
                  imageTag="v1")


# moto serves no ListServiceQuotas: the quota check has its tests in test_sagemaker_quotas.py
LAUNCH = ["launch", "--role", ROLE, "--s3_root", S3_ROOT, "--image", IMAGE, "--region", REGION,
          "--no_quota_check"]


def test_launch_creates_one_orchestrator_job_per_experiment_and_is_idempotent(
        aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from stbench.cli.main import main

    monkeypatch.setattr(signal, "signal", lambda *a: None)
    push_orchestrator(aws["session"])
    args = [*LAUNCH, "--benchmark", "synthetic_curves", "--method", "ASHA", "RS",
            "--num_seeds", "2", "--experiment_tag", "remote-1", "--warm_pool"]
    assert main(args) == 0
    sm = aws["session"].client("sagemaker")
    names = sorted(j["TrainingJobName"] for j in sm.list_training_jobs()["TrainingJobSummaries"])
    assert names == [f"remote-1-synthetic-curves-{m}-{s}-o00" for m in ("asha", "rs")
                     for s in (0, 1)]
    printed = capsys.readouterr()
    assert sorted(printed.out.split()) == names, "one name per line on stdout, for scripts"
    assert not any(name in printed.err for name in names), "and never again on stderr"
    assert "4 orchestrator jobs launched, 0 skipped" in printed.err
    job = sm.describe_training_job(TrainingJobName="remote-1-synthetic-curves-rs-1-o00")
    assert job["AlgorithmSpecification"]["TrainingImage"].endswith("/stbench-orchestrator:v1")
    spec = ExperimentSpec.from_hyperparameters(job["HyperParameters"])
    assert (spec.method, spec.start_seed, spec.num_seeds) == (("RS",), 1, 1)
    assert spec.backend == "sagemaker" and spec.image == IMAGE and spec.warm_pool
    assert job["CheckpointConfig"]["S3Uri"] == (
        f"s3://{BUCKET}/studies/remote-1/synthetic_curves/RS/1/orchestrator/")
    capsys.readouterr()
    assert main(args) == 0  # moto's jobs are Completed at once: nothing to relaunch
    assert "0 orchestrator jobs launched, 4 skipped" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    assert len(sm.list_training_jobs()["TrainingJobSummaries"]) == 8


def test_launch_study_file_checks_everything_before_creating_any_job(
        aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from stbench.cli.main import main

    monkeypatch.setattr(signal, "signal", lambda *a: None)
    study = tmp_path / "study.yaml"
    study.write_text("experiment_tag: st\nbenchmarks: [synthetic_curves]\n"
                     "methods: [ASHA, NOPE]\n")
    push_orchestrator(aws["session"])
    assert main([*LAUNCH, str(study)]) == 2
    assert "unknown method 'NOPE'" in capsys.readouterr().err
    study.write_text("experiment_tag: st\nbenchmarks: [synthetic_curves, mlp_digits]\n"
                     "methods: [RS]\n")
    orchestrator_missing = [*LAUNCH, str(study), "--orchestrator_image",
                            IMAGE.replace("stbench-trainer", "stbench-nothing")]
    assert main(orchestrator_missing) == 2
    assert "not found in ECR" in capsys.readouterr().err
    sm = aws["session"].client("sagemaker")
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []
    assert main([*LAUNCH, str(study)]) == 0
    assert len(sm.list_training_jobs()["TrainingJobSummaries"]) == 2


def test_status_shows_one_row_per_launched_experiment(
        aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The orchestrator keeps its results in its checkpoint prefix; status reads them."""
    from stbench.cli.main import main

    monkeypatch.setattr(signal, "signal", lambda *a: None)
    push_orchestrator(aws["session"])
    assert main([*LAUNCH, "--benchmark", "synthetic_curves", "--method", "ASHA",
                 "--num_seeds", "2", "--experiment_tag", "watch"]) == 0
    s3 = aws["session"].client("s3")
    folder = "studies/watch/synthetic_curves/ASHA/0/orchestrator/watch/synthetic_curves/ASHA/0"
    s3.put_object(Bucket=BUCKET, Key=f"{folder}/metadata.json",
                  Body=json.dumps({"metric": "loss", "mode": "min"}))
    rows = [{"trial_id": 0, "status": "Completed", "metrics": {"loss": 0.5}, "cost_usd": 0.01},
            {"trial_id": 1, "status": "Stopped", "metrics": {"loss": 0.25}, "cost_usd": 0.02,
             "started_on_warm_pool_of": "watch-synthetic-curves-asha-0-t000000-r00"}]
    s3.put_object(Bucket=BUCKET, Key=f"{folder}/results.jsonl",
                  Body="".join(json.dumps(r) + "\n" for r in rows))
    capsys.readouterr()
    assert main(["status", "--experiment_tag", "watch", "--region", REGION]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["benchmark", "method", "seed"]
    seed0 = lines[1].split()
    assert seed0[:3] == ["synthetic_curves", "ASHA", "0"]
    assert "0.25" in seed0 and "0.030" in seed0 and "1/2" in seed0
    seed1 = lines[2].split()
    assert seed1[2] == "1" and seed1[-1] == "0/0", "no results uploaded yet for seed 1"


def test_results_fetches_a_launched_study_from_s3(
        aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from stbench.cli.main import main

    monkeypatch.setattr(signal, "signal", lambda *a: None)
    push_orchestrator(aws["session"])
    assert main([*LAUNCH, "--benchmark", "synthetic_curves", "--method", "RS",
                 "--experiment_tag", "far"]) == 0
    folder = "studies/far/synthetic_curves/RS/0/orchestrator/far/synthetic_curves/RS/0"
    s3 = aws["session"].client("s3")
    s3.put_object(Bucket=BUCKET, Key=f"{folder}/metadata.json", Body=json.dumps(
        {"benchmark": "synthetic_curves", "method": "RS", "seed": 0, "metric": "loss",
         "mode": "min", "status": "completed"}))
    s3.put_object(Bucket=BUCKET, Key=f"{folder}/results.jsonl", Body=json.dumps(
        {"trial_id": 0, "status": "Completed", "wallclock_time": 1.0, "config": {"x": 1.0},
         "metrics": {"epoch": 1, "loss": 0.3}}) + "\n")
    capsys.readouterr()
    assert main(["results", "--experiment_tag", "far", "--results_root", str(tmp_path),
                 "--region", REGION]) == 0
    captured = capsys.readouterr()
    assert "fetched 1 experiments" in captured.err
    assert "RS" in captured.out and "0.3" in captured.out
    assert (tmp_path / "far" / "plots" / "synthetic_curves.png").is_file()


def upload_experiment(s3: Any, tag: str, seed: int, status: str, losses: list[float]) -> None:
    """What a launched orchestrator keeps in its checkpoint prefix."""
    experiment = f"{tag}/synthetic_curves/RS/{seed}"
    folder = f"studies/{experiment}/orchestrator/{experiment}"
    s3.put_object(Bucket=BUCKET, Key=f"{folder}/metadata.json", Body=json.dumps(
        {"benchmark": "synthetic_curves", "method": "RS", "seed": seed, "metric": "loss",
         "mode": "min", "status": status}))
    s3.put_object(Bucket=BUCKET, Key=f"{folder}/results.jsonl", Body="".join(json.dumps(
        {"trial_id": i, "status": "Completed", "wallclock_time": 1.0 + i, "config": {"x": 1.0},
         "metrics": {"epoch": 1, "loss": loss}}) + "\n" for i, loss in enumerate(losses)))


def test_results_refreshes_a_copy_while_the_study_is_unfinished_or_when_asked(
        aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy fetched while the study ran is fetched again until every experiment has
    uploaded a final status; then it is kept, unless --refresh."""
    from stbench.cli.main import main

    monkeypatch.setattr(signal, "signal", lambda *a: None)
    push_orchestrator(aws["session"])
    assert main([*LAUNCH, "--benchmark", "synthetic_curves", "--method", "RS", "--num_seeds",
                 "2", "--experiment_tag", "live"]) == 0
    s3 = aws["session"].client("s3")
    results = ["results", "--experiment_tag", "live", "--results_root", str(tmp_path),
               "--region", REGION]
    files = tmp_path / "live" / "synthetic_curves" / "RS"

    def rows(seed: int) -> int:
        return len((files / str(seed) / "results.jsonl").read_text().splitlines())

    upload_experiment(s3, "live", 0, "running", [0.5])  # seed 1 has uploaded nothing yet
    capsys.readouterr()
    assert main(results) == 0
    assert "fetched 1 experiments" in capsys.readouterr().err and rows(0) == 1
    upload_experiment(s3, "live", 0, "running", [0.5, 0.4])
    assert main(results) == 0  # seed 0 still runs, seed 1 had nothing
    assert "fetched 1 experiments" in capsys.readouterr().err and rows(0) == 2
    upload_experiment(s3, "live", 0, "completed", [0.5, 0.4, 0.3])
    upload_experiment(s3, "live", 1, "running", [0.7])
    assert main(results) == 0
    assert "fetched 2 experiments" in capsys.readouterr().err
    assert (rows(0), rows(1)) == (3, 1)
    upload_experiment(s3, "live", 1, "completed", [0.7, 0.2])
    assert main(results) == 0  # seed 1 was running
    assert rows(1) == 2 and "0.2" in capsys.readouterr().out
    upload_experiment(s3, "live", 1, "completed", [0.7, 0.2, 0.1])  # changed after the end
    assert main(results) == 0
    assert "fetched" not in capsys.readouterr().err and rows(1) == 2, "a finished copy is kept"
    assert main([*results, "--refresh"]) == 0
    assert "fetched 2 experiments" in capsys.readouterr().err and rows(1) == 3


def test_launch_refuses_a_tag_of_a_different_study_and_a_study_over_the_cap(
        aws: dict[str, Any], capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from stbench.cli.main import main

    monkeypatch.setattr(signal, "signal", lambda *a: None)
    push_orchestrator(aws["session"])
    sm = aws["session"].client("sagemaker")
    first = [*LAUNCH, "--benchmark", "synthetic_curves", "--method", "RS", "--experiment_tag",
             "owned", "--n_workers", "2"]
    assert main(first) == 0
    assert main(first) == 0, "the same study again is fine (and skips what runs or ran)"
    capsys.readouterr()
    other = [*LAUNCH, "--benchmark", "mlp_digits", "--method", "RS", "--experiment_tag", "owned"]
    assert main(other) == 2
    assert "already used by a different study" in capsys.readouterr().err
    too_big = [*LAUNCH, "--benchmark", "synthetic_curves", "--method", "RS", "ASHA",
               "--num_seeds", "3", "--n_workers", "4", "--experiment_tag", "big",
               "--max_instances", "20"]
    assert main(too_big) == 2
    err = capsys.readouterr().err
    assert "could run 30 instances at once" in err and "max_instances=20" in err
    assert len(sm.list_training_jobs()["TrainingJobSummaries"]) == 1


def test_launch_picks_the_gpu_trainer_for_a_gpu_benchmark(
        aws: dict[str, Any], capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One --image for a study: resnet_cifar10 (`image: gpu`) gets the stbench-trainer-gpu
    sibling, which must have been pushed, and the benchmark's SageMaker instance type."""
    from stbench.cli.main import main

    monkeypatch.setattr(signal, "signal", lambda *a: None)
    push_orchestrator(aws["session"])
    args = [*LAUNCH, "--benchmark", "resnet_cifar10", "--method", "ASHA",
            "--experiment_tag", "gpu"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stbench-trainer-gpu" in err and "make push" in err, err
    ecr = aws["session"].client("ecr")
    ecr.create_repository(repositoryName="stbench-trainer-gpu")
    ecr.put_image(repositoryName="stbench-trainer-gpu", imageManifest=json.dumps(MANIFEST),
                  imageTag="v1")
    assert main(args) == 0
    sm = aws["session"].client("sagemaker")
    job = sm.describe_training_job(TrainingJobName="gpu-resnet-cifar10-asha-0-o00")
    spec = ExperimentSpec.from_hyperparameters(job["HyperParameters"])
    assert spec.image == IMAGE.replace("stbench-trainer:", "stbench-trainer-gpu:")
    assert spec.instance_type == "ml.g4dn.xlarge" and spec.n_workers == 4
    assert job["AlgorithmSpecification"]["TrainingImage"].endswith("/stbench-orchestrator:v1")


@pytest.mark.usefixtures("fast_polls")
def test_run_on_sagemaker_picks_the_gpu_trainer_for_a_gpu_benchmark(
        aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`stbench run --backend sagemaker --image …/stbench-trainer:v1` on resnet_cifar10 (`image:
    gpu`) runs its trials in the stbench-trainer-gpu sibling, as launch does: refused in one
    line while that is not pushed, then its trial jobs use it."""
    from stbench.cli.main import main

    args = ["run", "--benchmark", "resnet_cifar10", "--method", "RS", "--backend", "sagemaker",
            "--role", ROLE, "--s3_root", S3_ROOT, "--image", IMAGE, "--region", REGION,
            "--n_workers", "1", "--max_failures", "1", "--max_wallclock_time", "60",
            "--experiment_tag", "gpu-run", "--no_quota_check", "--results_root", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stbench-trainer-gpu" in err, err
    sm = aws["session"].client("sagemaker")
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []
    ecr = aws["session"].client("ecr")
    ecr.create_repository(repositoryName="stbench-trainer-gpu")
    ecr.put_image(repositoryName="stbench-trainer-gpu", imageManifest=json.dumps(MANIFEST),
                  imageTag="v1")
    main(args)  # moto's jobs end at once without reports: the experiment ends at max_failures
    [summary, *_] = sm.list_training_jobs()["TrainingJobSummaries"]
    job = sm.describe_training_job(TrainingJobName=summary["TrainingJobName"])
    gpu_image = IMAGE.replace("stbench-trainer:", "stbench-trainer-gpu:")
    assert job["AlgorithmSpecification"]["TrainingImage"] == gpu_image
    assert job["ResourceConfig"]["InstanceType"] == "ml.g4dn.xlarge"
    metadata = json.loads((tmp_path / "gpu-run" / "resnet_cifar10" / "RS" / "0" /
                           "metadata.json").read_text())
    assert metadata["spec"]["image"] == gpu_image, "the recorded spec names the image used"
