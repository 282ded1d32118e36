"""Trial jobs carry `AlgorithmSpecification.MetricDefinitions` for the benchmark's metric, so
the SageMaker console plots each trial's curve from the `[tune-metric]` lines in its log."""

from __future__ import annotations

import json
import re

import pytest
from syne_tune.report import Reporter

from stbench.backends.jobs.job_requests import (
    MAX_METRIC_NAME,
    MAX_METRIC_REGEX,
    JobTemplate,
    trial_request,
)
from stbench.emulator.validation import check_request, service_model

TEMPLATE = JobTemplate(
    image="123456789012.dkr.ecr.us-east-1.amazonaws.com/stbench-trainer:latest",
    benchmark="synthetic_curves", instance_type="ml.c5.xlarge",
    checkpoint_root="s3://bucket/exp/checkpoints/", output_root="s3://bucket/exp/output/",
    role_arn="arn:aws:iam::123456789012:role/stbench", metrics=("loss",),
)


def definitions(template: JobTemplate) -> list[dict[str, str]]:
    request = trial_request(template, "exp-t000000-r00", 0, {"x": 0.5, "epochs": 3})
    return request["AlgorithmSpecification"].get("MetricDefinitions", [])


def reported_line(capsys: pytest.CaptureFixture[str], **metrics: float) -> str:
    """The line Syne Tune's own Reporter prints, as the trainer echoes it to the log."""
    Reporter()(**metrics)
    return capsys.readouterr().out.strip().splitlines()[-1]


@pytest.mark.parametrize("metric", ["loss", "val.acc(%)", "épsilon [nats]"])
def test_the_regex_reads_the_metric_from_a_report_line(
        metric: str, capsys: pytest.CaptureFixture[str]) -> None:
    template = JobTemplate(**{**TEMPLATE.__dict__, "metrics": (metric,)})
    (definition,) = definitions(template)
    assert definition["Name"] == metric
    line = reported_line(capsys, **{"epoch": 2, f"val_{metric}": 9.0, metric: -1.5e-3,
                                    "other": 7.0})
    assert float(re.search(definition["Regex"], line).group(1)) == -1.5e-3


def test_a_metric_is_not_read_from_another_whose_name_ends_the_same(
        capsys: pytest.CaptureFixture[str]) -> None:
    (definition,) = definitions(TEMPLATE)
    assert re.search(definition["Regex"], reported_line(capsys, val_loss=3.0, epoch=1)) is None


def test_the_local_endpoint_accepts_the_request_the_model_allows() -> None:
    request = trial_request(TEMPLATE, "exp-t000000-r00", 0, {"x": 0.5})
    check_request("sagemaker", "CreateTrainingJob", json.loads(json.dumps(request)))


def test_a_name_past_the_api_limits_gets_no_definition_and_the_job_is_still_valid() -> None:
    long_name = "m" * (MAX_METRIC_NAME + 1)
    escaped_name = "." * (MAX_METRIC_REGEX // 2)  # each '.' doubles in the regex
    template = JobTemplate(**{**TEMPLATE.__dict__, "metrics": (long_name, escaped_name, "loss")})
    assert [d["Name"] for d in definitions(template)] == ["loss"]


def test_our_limits_are_the_service_models() -> None:
    shape = service_model("sagemaker").shape_for("MetricDefinition")
    assert (shape.members["Name"].metadata["max"], shape.members["Regex"].metadata["max"]) == \
        (MAX_METRIC_NAME, MAX_METRIC_REGEX)


def test_jobs_without_metrics_send_no_definitions() -> None:
    assert definitions(JobTemplate(**{**TEMPLATE.__dict__, "metrics": ()})) == []
