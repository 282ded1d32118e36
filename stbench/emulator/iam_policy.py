"""AWS's evaluation of identity-based policies, for the endpoint's IAM enforcement.

Pure: policies are the JSON documents as IAM stores them, a request is (action, resource
ARN, context keys). The rules are those of the IAM User Guide's "Policy evaluation logic"
for a principal in its own account with identity-based policies only (no resource policies,
boundaries, session policies or SCPs, which stbench's set-up does not use):

- an explicit Deny in any statement wins, else an Allow, else the request is implicitly
  denied;
- Action/NotAction match case-insensitively, Resource/NotResource case-sensitively, each
  with the wildcards `*` (any run of characters) and `?` (one character), an ARN's six
  colon-separated parts matched one by one;
- a statement's Condition holds when every operator holds, an operator when every key does,
  a key when any of the policy's values matches (`...IfExists`, `ForAnyValue:`,
  `ForAllValues:` and `Null` as documented). Policy variables (`${aws:username}`) are not
  expanded: stbench's policies use none.

moto's own access control checks actions only, so this is the endpoint's own (`policyuniverse`
matches actions against its bundled action list, not ARNs against patterns, so it did not fit).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any

ContextValue = str | Sequence[str]


class Decision(Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


@dataclass(frozen=True)
class Request:
    """One action on one resource; `context` keys as IAM names them (case-insensitive)."""

    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)


def evaluate(policies: Iterable[Mapping[str, Any]], request: Request) -> Decision:
    """Explicit deny, else allow, else implicit deny (IAM User Guide: "Determining whether
    a request is allowed or denied within an account")."""
    allowed = False
    context = {key.lower(): value for key, value in request.context.items()}
    for policy in policies:
        for statement in _as_list(policy.get("Statement")):
            if not isinstance(statement, Mapping) or not _applies(statement, request, context):
                continue
            if statement.get("Effect") == "Deny":
                return Decision.EXPLICIT_DENY
            if statement.get("Effect") == "Allow":
                allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def denial_message(principal: str, request: Request, decision: Decision) -> str:
    """AWS's wording of an access-denied message for an identity-based policy."""
    head = (f"User: {principal} is not authorized to perform: {request.action} "
            f"on resource: {request.resource}")
    if decision is Decision.EXPLICIT_DENY:
        return f"{head} with an explicit deny in an identity-based policy"
    return f"{head} because no identity-based policy allows the {request.action} action"


# --- matching ------------------------------------------------------------------------------

def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _applies(statement: Mapping[str, Any], request: Request,
             context: Mapping[str, ContextValue]) -> bool:
    return (_element_matches(statement, "Action", action_matches, request.action)
            and _element_matches(statement, "Resource", arn_matches, request.resource)
            and conditions_hold(statement.get("Condition") or {}, context))


def _element_matches(statement: Mapping[str, Any], element: str,
                     matches: Callable[[str, str], bool], value: str) -> bool:
    """`Action` (or `Resource`) names the value, or `NotAction` (`NotResource`) does not;
    a statement with neither applies to nothing."""
    if element in statement:
        return any(matches(p, value) for p in _as_list(statement[element]))
    if f"Not{element}" in statement:
        return not any(matches(p, value) for p in _as_list(statement[f"Not{element}"]))
    return False


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = ("." if c == "?" else ".*" if c == "*" else re.escape(c) for c in pattern)
    return re.compile("".join(parts) + r"\Z", re.S | (re.I if ignore_case else 0))


def wildcard_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """`*` matches any run of characters (none too), `?` exactly one; nothing else is
    special (IAM has no character classes)."""
    return _glob(pattern, ignore_case).match(value) is not None


def action_matches(pattern: str, action: str) -> bool:
    """Action names are not case-sensitive ("s3:getobject" is s3:GetObject)."""
    return wildcard_match(str(pattern), action, ignore_case=True)


def arn_matches(pattern: str, arn: str) -> bool:
    """`*` alone matches every resource; otherwise the six ARN parts (arn, partition,
    service, region, account, resource) match part by part, the resource part taking the
    rest, colons included."""
    pattern = str(pattern)
    if pattern == "*":
        return True
    wanted, given = pattern.split(":", 5), arn.split(":", 5)
    if len(wanted) != 6 or len(given) != 6:
        return wildcard_match(pattern, arn)
    return all(wildcard_match(p, v) for p, v in zip(wanted, given, strict=True))


# --- conditions ----------------------------------------------------------------------------

def _string_equals(policy: str, value: str) -> bool:
    return policy == value


def _string_ignore_case(policy: str, value: str) -> bool:
    return policy.lower() == value.lower()


def _string_like(policy: str, value: str) -> bool:
    return wildcard_match(policy, value)


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def match(policy: str, value: str) -> bool:
        try:
            return compare(float(value), float(policy))
        except ValueError:
            return False
    return match


def _bool(policy: str, value: str) -> bool:
    return policy.lower() == value.lower()


# operator -> (value test, negated): a negated operator holds when no policy value matches
OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (_string_equals, False),
    "StringNotEquals": (_string_equals, True),
    "StringEqualsIgnoreCase": (_string_ignore_case, False),
    "StringNotEqualsIgnoreCase": (_string_ignore_case, True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "ArnEquals": (arn_matches, False),
    "ArnLike": (arn_matches, False),
    "ArnNotEquals": (arn_matches, True),
    "ArnNotLike": (arn_matches, True),
    "NumericEquals": (_numeric(lambda a, b: a == b), False),
    "NumericNotEquals": (_numeric(lambda a, b: a == b), True),
    "NumericLessThan": (_numeric(lambda a, b: a < b), False),
    "NumericLessThanEquals": (_numeric(lambda a, b: a <= b), False),
    "NumericGreaterThan": (_numeric(lambda a, b: a > b), False),
    "NumericGreaterThanEquals": (_numeric(lambda a, b: a >= b), False),
    "Bool": (_bool, False),
}


class UnknownOperator(ValueError):
    """A condition operator this evaluator does not implement: refuse rather than guess."""


def conditions_hold(condition: Mapping[str, Any], context: Mapping[str, ContextValue]) -> bool:
    lowered = {key.lower(): value for key, value in context.items()}
    for operator, tests in condition.items():
        if not isinstance(tests, Mapping):
            return False
        for key, policy_values in tests.items():
            values = [str(v) for v in _as_list(policy_values)]
            if not _operator_holds(operator, lowered.get(key.lower()), values):
                return False
    return True


def _operator_holds(operator: str, present: ContextValue | None, policy: list[str]) -> bool:
    qualifier, _, name = operator.rpartition(":")
    if name == "Null":  # "true": the key must be absent; "false": present
        return any((present is None) == (value.lower() == "true") for value in policy)
    if_exists = name.endswith("IfExists")
    name = name.removesuffix("IfExists")
    if name not in OPERATORS or qualifier not in ("", "ForAnyValue", "ForAllValues"):
        raise UnknownOperator(operator)
    test, negated = OPERATORS[name]
    if present is None:
        # a missing key: IfExists holds; ForAllValues holds (no value fails it); a negated
        # operator holds (nothing equals); any other operator fails (User Guide: "Condition
        # operators", "Multivalued context keys")
        return if_exists or qualifier == "ForAllValues" or (negated and qualifier == "")
    values = [present] if isinstance(present, str) else [str(v) for v in present]

    def single(value: str) -> bool:
        hit = any(test(p, value) for p in policy)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(single(value) for value in values)
    return any(single(value) for value in values)
