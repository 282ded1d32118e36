"""AWS's access-denied answers become one line naming the action and the resource, from a
command (the caller's denial) and from `stbench status` (a job's FailureReason)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from stbench.backends.aws import credential_errors
from stbench.cli.main import guarded
from stbench.launch.status import ExperimentStatus, format_status
from stbench.model.errors import UserError

ROLE = "arn:aws:iam::123456789012:role/stbench-sagemaker"
USER = "arn:aws:iam::123456789012:user/stbench-user"
PASS_ROLE = (f"User: {USER} is not authorized to perform: iam:PassRole on resource: {ROLE} "
             "because no identity-based policy allows the iam:PassRole action")


def denied(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "CreateTrainingJob")


def test_a_denied_call_is_one_line_with_action_and_resource(
        capsys: pytest.CaptureFixture[str]) -> None:
    def launch() -> int:
        raise denied("AccessDeniedException", PASS_ROLE)

    reasons: list[str] = []
    assert guarded(launch, reasons.append) == 2
    err = capsys.readouterr().err
    assert err == (f"stbench: error: no permission for iam:PassRole on {ROLE}: grant it to "
                   f"{USER} (docs/iam.md, the stack's policies)\n")
    assert reasons == [err.removeprefix("stbench: error: ").strip()]  # the job's reason too


def test_credential_errors_names_a_denial_the_caller_left_alone() -> None:
    s3_message = (f"User: {USER} is not authorized to perform: s3:PutObject on resource: "
                  '"arn:aws:s3:::bucket/other/x" because no identity-based policy allows '
                  "the s3:PutObject action")
    with pytest.raises(UserError, match=r"^no permission for s3:PutObject on "
                                        r"arn:aws:s3:::bucket/other/x: grant it to "):
        with credential_errors():
            raise denied("AccessDenied", s3_message)
    with pytest.raises(ClientError):  # not a denial: the caller's own mapping decides
        with credential_errors():
            raise denied("ValidationException", "bad")


def test_status_prints_a_failed_job_s_denial() -> None:
    reason = ("ClientError: uploading checkpoints failed: An error occurred (AccessDenied) "
              "when calling the PutObject operation: User: arn:aws:sts::123456789012:"
              "assumed-role/stbench-sagemaker/SageMaker is not authorized to perform: "
              "s3:PutObject on resource: arn:aws:s3:::b/stbench/t/x because no identity-based "
              "policy allows the s3:PutObject action")
    rows = [ExperimentStatus("mlp_digits", "RS", 0, "t-mlp-digits-rs-0-o00", "Failed", 0, 0,
                             None, None, 0, reason),
            ExperimentStatus("mlp_digits", "RS", 1, "t-mlp-digits-rs-1-o00", "Completed", 3, 0,
                             0.1, 0.01, 0)]
    lines = format_status(rows).splitlines()
    assert len(lines) == 4
    assert lines[-1] == ("t-mlp-digits-rs-0-o00: no permission for s3:PutObject on "
                         "arn:aws:s3:::b/stbench/t/x: grant it to arn:aws:sts::123456789012:"
                         "assumed-role/stbench-sagemaker/SageMaker (docs/iam.md, the stack's "
                         "policies)")
