"""The AWS JSON 1.1 protocol as botocore reads it: `X-Amz-Target` in, JSON out, errors as
`{"__type": code, "message": text}` with an HTTP 4xx/5xx status, timestamps as epoch seconds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
# SigV4: `Credential=<key>/<date>/<region>/<service>/aws4_request`
CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
ACCESS_KEY = re.compile(r"Credential=([^/,\s]+)/")  # a SigV4 signature's access key

StartResponse = Callable[..., Any]


class AwsError(Exception):
    """An error answer: botocore raises ClientError with `code` as Error.Code."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status


def validation_error(message: str) -> AwsError:
    return AwsError("ValidationException", message)


def not_found(name: str) -> AwsError:
    """What SageMaker answers for an unknown training job (not the model's ResourceNotFound:
    DescribeTrainingJob on AWS raises ValidationException, aws/aws-sdk issue 165)."""
    return validation_error(f"Requested resource not found: training job {name} does not exist.")


def region_of(environ: dict[str, Any], default: str) -> str:
    """The region a client signed its request for (its credential scope), else `default`."""
    match = CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else default


def target_of(environ: dict[str, Any]) -> tuple[str, str]:
    """(`SageMaker`, `CreateTrainingJob`) from `X-Amz-Target: SageMaker.CreateTrainingJob`."""
    prefix, _, action = environ.get("HTTP_X_AMZ_TARGET", "").partition(".")
    return prefix, action


def read_body(environ: dict[str, Any]) -> dict[str, Any]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    raw = environ["wsgi.input"].read(length) if length else b""
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except json.JSONDecodeError:
        raise AwsError("SerializationException", "the request body is not JSON") from None
    if not isinstance(body, dict):
        raise AwsError("SerializationException", "the request body is not a JSON object")
    return body


def respond(start_response: StartResponse, status: int, body: dict[str, Any]) -> Iterable[bytes]:
    data = json.dumps(body).encode()
    reason = {200: "OK", 400: "Bad Request", 500: "Internal Server Error"}.get(status, "Error")
    start_response(f"{status} {reason}", [("Content-Type", JSON_CONTENT_TYPE),
                                          ("Content-Length", str(len(data)))])
    return [data]


def respond_error(start_response: StartResponse, error: AwsError) -> Iterable[bytes]:
    return respond(start_response, error.status, {"__type": error.code,
                                                  "message": error.message})
