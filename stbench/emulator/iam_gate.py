"""IAM on the endpoint: every request's caller, and what its identity policies allow.

The caller is found from the request's SigV4 access key: an IAM user's key (moto's IAM)
or an STS session's (AssumeRole, moto's STS; the session token must match) is evaluated
against that user's or role's policies (inline, attached, and the user's groups'), with
iam_policy.py, for the actions and resources iam_requests.py reads from the request. A key
the endpoint's IAM does not know, such as the test credentials `testing`, is the account's
root, as every key is on moto: nothing is checked for it.

A denial is answered as the service answers it: `AccessDeniedException` (JSON services),
`AccessDenied` with HTTP 403 (S3, IAM, STS, CloudFormation), with AWS's message.

SageMaker's own calls as a job's execution role (image pull, channel download, uploads,
log writes) are checked with `role_denial`, and a job's containers get the role's
temporary credentials from `role_credentials`.
"""

from __future__ import annotations

import ast
import io
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

from stbench.emulator.iam_policy import (
    Decision,
    Request,
    UnknownOperator,
    denial_message,
    evaluate,
)
from stbench.emulator.iam_requests import Incoming, requests_of
from stbench.emulator.job_records import ACCOUNT_ID
from stbench.emulator.protocol import ACCESS_KEY, CREDENTIAL_SCOPE, StartResponse, respond

SAGEMAKER_SESSION = "SageMaker"  # the session name SageMaker gives a job's role session
JSON_DENIED = "AccessDeniedException"
XML_NAMESPACES = {"iam": "https://iam.amazonaws.com/doc/2010-05-08/",
                  "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
                  "cloudformation": "http://cloudformation.amazonaws.com/doc/2010-05-15/"}
READ_BODY_LIMIT = 1 << 20  # S3 uploads are never read: only JSON, query and DeleteObjects


@dataclass(frozen=True)
class Identity:
    arn: str  # as AWS's messages name it (user ARN, or assumed-role session ARN)
    policies: tuple[dict[str, Any], ...]


class Denied(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _document(raw: Any) -> dict[str, Any]:
    """A policy document as moto stores it: a dict, JSON, URL-encoded JSON, or (from
    CloudFormation's inline policies) a Python repr."""
    if isinstance(raw, dict):
        return raw
    text = str(raw)
    for parse in (json.loads, lambda t: json.loads(unquote(t)), ast.literal_eval):
        try:
            value = parse(text)
        except (ValueError, SyntaxError):
            continue
        if isinstance(value, dict):
            return value
    return {}


class Authorizer:
    """The endpoint's IAM: moto's users, roles and sessions, evaluated by iam_policy.py."""

    def __init__(self, account: str = ACCOUNT_ID):
        self.account = account
        self._lock = threading.Lock()
        self._sessions: dict[str, dict[str, str]] = {}  # role ARN -> its SageMaker session

    @property
    def _iam(self) -> Any:
        from moto.iam.models import iam_backends

        return iam_backends[self.account]["global"]

    @property
    def _sts(self) -> Any:
        from moto.sts.models import sts_backends

        return sts_backends[self.account]["global"]

    def caller(self, access_key: str, token: str | None) -> Identity | None:
        """The user or role session behind a key; None for a key IAM does not know (root)."""
        iam = self._iam
        for user in list(iam.users.values()):
            if any(key.access_key_id == access_key for key in user.access_keys):
                return Identity(user.arn, tuple(self._user_policies(user)))
        for session in list(self._sts.assumed_roles):
            if session.access_key_id == access_key:
                if token != session.session_token:
                    raise Denied("The security token included in the request is invalid.")
                name = session.role_arn.split("/")[-1]
                arn = f"arn:aws:sts::{self.account}:assumed-role/{name}/{session.session_name}"
                return Identity(arn, tuple(self._role_policies(session.role_arn)))
        return None

    def role(self, role_arn: str) -> Identity | None:
        """A role as SageMaker assumes it; None when no such role exists here (then the job
        runs unchecked, with the endpoint's test credentials, as before IAM was enforced)."""
        if self._find_role(role_arn) is None:
            return None
        name = role_arn.split("/")[-1]
        return Identity(f"arn:aws:sts::{self.account}:assumed-role/{name}/{SAGEMAKER_SESSION}",
                        tuple(self._role_policies(role_arn)))

    def role_credentials(self, role_arn: str, region: str) -> dict[str, str] | None:
        """Temporary credentials of the role (sts:AssumeRole as SageMaker does it), as a
        container's environment; None when the role does not exist here."""
        if self._find_role(role_arn) is None:
            return None
        with self._lock:  # one session per role: each caller lookup scans the sessions
            if role_arn not in self._sessions:
                session = self._sts.assume_role(region_name=region,
                                                role_session_name=SAGEMAKER_SESSION,
                                                role_arn=role_arn, policy="", duration=43200,
                                                external_id="")
                self._sessions[role_arn] = {
                    "AWS_ACCESS_KEY_ID": session.access_key_id,
                    "AWS_SECRET_ACCESS_KEY": session.secret_access_key,
                    "AWS_SESSION_TOKEN": session.session_token}
            return dict(self._sessions[role_arn])

    def denial(self, identity: Identity, requests: Iterable[Request]) -> str | None:
        """AWS's message for the first request the identity may not make; None: allowed."""
        for request in requests:
            try:
                decision = evaluate(identity.policies, request)
            except UnknownOperator as err:  # refuse what we cannot evaluate, and say why
                return (f"{denial_message(identity.arn, request, Decision.IMPLICIT_DENY)} "
                        f"(the endpoint does not evaluate condition operator {err})")
            if decision is not Decision.ALLOW:
                return denial_message(identity.arn, request, decision)
        return None

    def policies_of(self, arn: str) -> list[dict[str, Any]] | None:
        """The identity policies of a user or role ARN; None when no such principal exists."""
        if self._find_role(arn) is not None:
            return self._role_policies(arn)
        user = next((u for u in list(self._iam.users.values()) if u.arn == arn), None)
        return None if user is None else self._user_policies(user)

    def _find_role(self, role_arn: str) -> Any:
        return next((role for role in list(self._iam.roles.values()) if role.arn == role_arn),
                    None)

    def _role_policies(self, role_arn: str) -> list[dict[str, Any]]:
        role = self._find_role(role_arn)
        if role is None:
            return []
        return ([_document(text) for text in role.policies.values()]
                + [_managed(policy) for policy in role.managed_policies.values()])

    def _user_policies(self, user: Any) -> list[dict[str, Any]]:
        found = [_document(text) for text in user.policies.values()]
        found += [_managed(policy) for policy in user.managed_policies.values()]
        for group in self._iam.get_groups_for_user(user.name):
            found += [_document(text) for text in group.policies.values()]
            found += [_managed(policy) for policy in group.managed_policies.values()]
        return found


def _managed(policy: Any) -> dict[str, Any]:
    version = next((v for v in policy.versions if v.version_id == policy.default_version_id),
                   None)
    return _document(version.document) if version is not None else {}


class IamGate:
    """WSGI middleware in front of the endpoint: a denied request never reaches it."""

    def __init__(self, app: Any, authorizer: Authorizer, default_region: str):
        self.app = app
        self.authorizer = authorizer
        self.default_region = default_region

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        query = environ.get("QUERY_STRING", "")
        form = parse_qs(query)
        match = ACCESS_KEY.search(authorization)
        key = match.group(1) if match else (form.get("X-Amz-Credential", [""])[0].split("/")[0])
        if not key:
            return self.app(environ, start_response)
        token = environ.get("HTTP_X_AMZ_SECURITY_TOKEN") or form.get(
            "X-Amz-Security-Token", [None])[0]
        scope = CREDENTIAL_SCOPE.search(authorization) or CREDENTIAL_SCOPE.search(
            "Credential=" + form.get("X-Amz-Credential", [""])[0])
        region, service = (scope.group(1), scope.group(2)) if scope else (
            self.default_region, "")
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        try:
            identity = self.authorizer.caller(key, token)
            if identity is None:
                return self.app(environ, start_response)
            body = self._body(environ, service, target, query)
            incoming = Incoming(
                method=environ.get("REQUEST_METHOD", "GET"), path=environ.get("PATH_INFO", "/"),
                query=query, target=target, service=service, region=region, body=body,
                headers={"x-amz-copy-source": environ.get("HTTP_X_AMZ_COPY_SOURCE", "")})
            message = self.authorizer.denial(identity, requests_of(incoming,
                                                                   self.authorizer.account))
        except Denied as err:
            return _deny(start_response, service, target, err.message, "InvalidClientTokenId")
        if message is not None:
            return _deny(start_response, service, target, message)
        return self.app(environ, start_response)

    @staticmethod
    def _body(environ: dict[str, Any], service: str, target: str, query: str) -> bytes:
        """The request body when it decides the resource (JSON, query protocol, S3's
        DeleteObjects); the stream is put back for the endpoint."""
        s3_delete = service == "s3" and "delete" in parse_qs(query, keep_blank_values=True)
        if service == "s3" and not s3_delete:
            return b""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if not length or length > READ_BODY_LIMIT:
            return b""
        raw = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(raw)
        return bytes(raw)


def _deny(start_response: StartResponse, service: str, target: str, message: str,
          code: str = "") -> Iterable[bytes]:
    if target:
        return respond(start_response, 400, {"__type": code or JSON_DENIED, "message": message})
    code = code or "AccessDenied"
    text = (message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))
    if service in XML_NAMESPACES:
        xml = (f'<ErrorResponse xmlns="{XML_NAMESPACES[service]}"><Error><Type>Sender</Type>'
               f"<Code>{code}</Code><Message>{text}</Message></Error>"
               "<RequestId>stbench-endpoint</RequestId></ErrorResponse>")
    else:
        xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
               f"<Message>{text}</Message><RequestId>stbench-endpoint</RequestId></Error>")
    data = xml.encode()
    start_response("403 Forbidden", [("Content-Type", "application/xml"),
                                     ("Content-Length", str(len(data)))])
    return [data]
