"""What every boto3 caller of stbench shares: its clients' retry policy, reading AWS errors,
s3:// URIs, and the credentials check that turns a missing setup into one line.

It sits in `backends`, below both the SageMaker adapter (`backends/jobs`) and the launch
layer, so that each of them imports it with dependencies pointing down. botocore only:
callers pass their boto3 session in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore import exceptions as aws
from botocore.config import Config
from botocore.exceptions import ClientError

from stbench.model.errors import UserError

RETRY_ATTEMPTS = 8
CREDENTIALS_FIX = "run `aws configure` or set AWS_PROFILE"
CREDENTIAL_ERRORS = (aws.NoCredentialsError, aws.PartialCredentialsError, aws.SSOError,
                     aws.CredentialRetrievalError)
BAD_CREDENTIALS = {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
                   "InvalidAccessKeyId", "AuthFailure", "ExpiredToken", "ExpiredTokenException"}
DENIED = {"AccessDenied", "AccessDeniedException", "403", "Forbidden"}
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "RequestLimitExceeded", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
})
NO_OBJECT = ("NoSuchKey", "404")  # GetObject's code; HeadObject answers a bare 404


# AWS's access-denied message: "User: <principal> is not authorized to perform: <action>
# [on resource: <arn>] because no identity-based policy allows ..." (S3 may quote the ARN)
NOT_AUTHORIZED = re.compile(r"(?:User: (?P<principal>\S+) )?is not authorized to perform: "
                            r"(?P<action>[\w-]+:[\w*-]+)"
                            r"(?: on resource: \"?(?P<resource>[^\s\"]+)\"?)?")


def retrying(max_attempts: int = RETRY_ATTEMPTS) -> Config:
    """Adaptive retries: botocore backs off throttled calls and paces the client itself, so
    a long study rides out API rate limits instead of failing on them."""
    return Config(retries={"mode": "adaptive", "max_attempts": max_attempts})


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def error_message(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Message", ""))


def one_line(value: object) -> str:
    """AWS messages may span lines; a UserError may not."""
    return " ".join(str(value).split())


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/key` as ("bucket", "some/key"); the key may be empty."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def read_s3_text(s3: Any, bucket: str, key: str) -> str | None:
    """An S3 object's text, or None when there is no such object."""
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    except ClientError as err:
        if error_code(err) not in NO_OBJECT:
            raise
        return None


def check_credentials(session: Any, alternative: str = "") -> str:
    """Credentials that botocore can load, and a region; returns the region. `alternative`
    (e.g. "or push elsewhere with --registry") is offered after each fix."""
    tail = f", {alternative}" if alternative else ""
    try:
        has_credentials = session.get_credentials() is not None
    except CREDENTIAL_ERRORS as err:
        raise UserError(f"AWS credentials unusable ({one_line(err)}): {CREDENTIALS_FIX}{tail}"
                        ) from err
    if not has_credentials:
        raise UserError(f"no AWS credentials: {CREDENTIALS_FIX}{tail}")
    if not session.region_name:
        raise UserError(f"no AWS region: pass --region or set AWS_DEFAULT_REGION{tail}")
    return str(session.region_name)


def denial_line(text: str) -> str | None:
    """`no permission for ACTION on RESOURCE: ...` from a text holding AWS's access-denied
    message (an AccessDenied error, or a job's FailureReason); None when it holds none."""
    match = NOT_AUTHORIZED.search(text)
    if match is None:
        return None
    resource = match["resource"] or "*"
    who = f" to {match['principal']}" if match["principal"] else ""
    return (f"no permission for {match['action']} on {resource}: grant it{who} "
            "(docs/iam.md, the stack's policies)")


def access_denied(err: BaseException) -> str | None:
    """The one line for a ClientError that AWS denied (None for any other error)."""
    if isinstance(err, ClientError) and error_code(err) in DENIED:
        return denial_line(error_message(err)) or (
            f"access denied ({error_code(err)}: {one_line(error_message(err))}): "
            "grant the missing permission (docs/iam.md)")
    return None


@contextmanager
def credential_errors() -> Iterator[None]:
    """Credentials that fail only when a call is made (unloadable, expired, rejected) and
    denials the caller did not handle itself, as one line naming the fix (for a denial: the
    action and resource); any other error passes through to the caller's own mapping."""
    try:
        yield
    except CREDENTIAL_ERRORS as err:
        raise UserError(f"no usable AWS credentials ({one_line(err)}): {CREDENTIALS_FIX}"
                        ) from err
    except ClientError as err:
        if error_code(err) in BAD_CREDENTIALS:
            raise UserError(f"AWS rejected your credentials ({error_code(err)}): "
                            f"{CREDENTIALS_FIX}, or `aws sso login`") from err
        if error_code(err) in DENIED and (line := denial_line(error_message(err))):
            raise UserError(line) from err
        raise
