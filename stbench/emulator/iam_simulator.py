"""IAM's policy simulator on the endpoint: `SimulatePrincipalPolicy`, which moto lacks.

The SageMaker Python SDK 3.x checks an execution role with it before it creates a job
(`SAGEMAKER_VALIDATE_ROLE`, on by default), so without it the SDK met an HTTP 500 here. The
answer comes from the same evaluator as the endpoint's IAM enforcement (iam_policy.py) over
the principal's identity policies, so the SDK learns what AWS would tell it: a role that
lacks an action it requires is refused by the SDK, as on AWS. Per the API reference, one
EvaluationResult per action: for one resource (or none given: `*`) its decision and name;
for several, ResourceSpecificResults, and the action is allowed only if every one is.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from stbench.emulator.iam_gate import Authorizer
from stbench.emulator.iam_policy import Decision, Request, evaluate
from stbench.emulator.protocol import CREDENTIAL_SCOPE, StartResponse

ACTION = "SimulatePrincipalPolicy"
NAMESPACE = "https://iam.amazonaws.com/doc/2010-05-08/"
EVAL_DECISION = {Decision.ALLOW: "allowed", Decision.EXPLICIT_DENY: "explicitDeny",
                 Decision.IMPLICIT_DENY: "implicitDeny"}
FORM_LIMIT = 1 << 20


def members(form: dict[str, list[str]], name: str) -> list[str]:
    """`Name.member.1`, `Name.member.2`, ... of a query-protocol form, in order."""
    found = []
    index = 1
    while f"{name}.member.{index}" in form:
        found.append(form[f"{name}.member.{index}"][0])
        index += 1
    return found


def context_entries(form: dict[str, list[str]]) -> dict[str, list[str]]:
    """ContextEntries as the evaluator's context keys (values as given, lists kept)."""
    context: dict[str, list[str]] = {}
    index = 1
    while f"ContextEntries.member.{index}.ContextKeyName" in form:
        prefix = f"ContextEntries.member.{index}"
        context[form[f"{prefix}.ContextKeyName"][0]] = members(form, f"{prefix}.ContextKeyValues")
        index += 1
    return context


def simulate(policies: Iterable[dict[str, Any]], actions: list[str], resources: list[str],
             context: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The EvaluationResults, as dicts in the API's member names."""
    policies = list(policies)
    results = []
    for action in actions:
        decisions = {resource: evaluate(policies, Request(action, resource, context))
                     for resource in resources or ["*"]}
        result: dict[str, Any] = {"EvalActionName": action}
        if len(decisions) == 1:
            (resource, decision), = decisions.items()
            result.update(EvalResourceName=resource, EvalDecision=EVAL_DECISION[decision])
        else:
            worst = next((d for d in (Decision.EXPLICIT_DENY, Decision.IMPLICIT_DENY)
                          if d in decisions.values()), Decision.ALLOW)
            result.update(EvalResourceName="*", EvalDecision=EVAL_DECISION[worst],
                          ResourceSpecificResults=[
                              {"EvalResourceName": resource,
                               "EvalResourceDecision": EVAL_DECISION[decision]}
                              for resource, decision in decisions.items()])
        results.append(result)
    return results


def _xml(results: list[dict[str, Any]]) -> bytes:
    def member(fields: dict[str, Any]) -> str:
        inner = ""
        for key, value in fields.items():
            if isinstance(value, list):
                inner += f"<{key}>{''.join(member(v) for v in value)}</{key}>"
            else:
                inner += f"<{key}>{escape(str(value))}</{key}>"
        return f"<member>{inner}<MatchedStatements/><MissingContextValues/></member>"

    body = "".join(member(result) for result in results)
    return (f'<{ACTION}Response xmlns="{NAMESPACE}"><{ACTION}Result>'
            f"<IsTruncated>false</IsTruncated><EvaluationResults>{body}</EvaluationResults>"
            f"</{ACTION}Result><ResponseMetadata><RequestId>stbench-endpoint</RequestId>"
            f"</ResponseMetadata></{ACTION}Response>").encode()


def _error(start_response: StartResponse, code: str, message: str) -> Iterable[bytes]:
    data = (f'<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>Sender</Type><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message></Error><RequestId>stbench-endpoint"
            "</RequestId></ErrorResponse>").encode()
    start_response("404 Not Found" if code == "NoSuchEntity" else "400 Bad Request",
                   [("Content-Type", "text/xml"), ("Content-Length", str(len(data)))])
    return [data]


class PolicySimulator:
    """WSGI: answers IAM's SimulatePrincipalPolicy; `routes` tells the endpoint which."""

    def __init__(self, authorizer: Authorizer):
        self.authorizer = authorizer

    def routes(self, environ: dict[str, Any]) -> bool:
        scope = CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if not scope or scope.group(2) != "iam":
            return False
        form = self._form(environ)
        return form.get("Action", [""])[0] == ACTION

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        form = self._form(environ)
        source = form.get("PolicySourceArn", [""])[0]
        policies = self.authorizer.policies_of(source)
        if policies is None:
            return _error(start_response, "NoSuchEntity",
                          f"The principal {source} cannot be found.")
        actions = members(form, "ActionNames")
        if not actions:
            return _error(start_response, "InvalidInput", "ActionNames must not be empty.")
        data = _xml(simulate(policies, actions, members(form, "ResourceArns"),
                             context_entries(form)))
        start_response("200 OK", [("Content-Type", "text/xml"),
                                  ("Content-Length", str(len(data)))])
        return [data]

    @staticmethod
    def _form(environ: dict[str, Any]) -> dict[str, list[str]]:
        """The form body, read once and put back for whoever answers the request."""
        if "stbench.iam_form" not in environ:
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            raw = environ["wsgi.input"].read(length) if 0 < length <= FORM_LIMIT else b""
            environ["wsgi.input"] = io.BytesIO(raw)
            environ["stbench.iam_form"] = parse_qs(raw.decode("utf-8", "replace"))
        return environ["stbench.iam_form"]  # type: ignore[no-any-return]
