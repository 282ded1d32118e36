"""Request validation as the service does it, from botocore's service model.

botocore checks required members, types and minimums on the client; the service also checks
maximums, patterns and enums (e.g. `TrainingInstanceType`, whose members are the instance
types CreateTrainingJob accepts; `ml.c5.large` is not one). Messages follow AWS's
`N validation error(s) detected: Value 'x' at 'resourceConfig.instanceType' failed to
satisfy constraint: Member must satisfy enum value set: [...]`. Patterns must match the
whole value, as the service applies them.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from botocore.model import Shape

from stbench.emulator.protocol import validation_error

MAX_VALUE_CHARS = 80  # values are quoted in messages; long ones are cut


@cache
def service_model(name: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(name)


@cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:  # a Java-only construct: the service checks it, we cannot
        return None


def check_request(service: str, operation: str, body: dict[str, Any]) -> None:
    """Raise ValidationException listing every violated constraint of `operation`'s input."""
    shape = service_model(service).operation_model(operation).input_shape
    errors: list[str] = []
    _check(shape, body, "", errors)
    if errors:
        count = len(errors)
        plural = "error" if count == 1 else "errors"
        raise validation_error(f"{count} validation {plural} detected: " + "; ".join(errors))


def enum_of(service: str, shape_name: str) -> list[str]:
    return list(service_model(service).shape_for(shape_name).enum)


def _member_path(parent: str, member: str) -> str:
    camel = member[:1].lower() + member[1:]
    return f"{parent}.{camel}" if parent else camel


def _quote(value: Any) -> str:
    text = str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "..."


def _fail(errors: list[str], value: Any, path: str, constraint: str) -> None:
    shown = "null" if value is None else f"'{_quote(value)}'"
    errors.append(f"Value {shown} at '{path}' failed to satisfy constraint: {constraint}")


def _check(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            return
        for name in shape.required_members:
            if value.get(name) is None:
                _fail(errors, None, _member_path(path, name), "Member must not be null")
        for name, member in shape.members.items():
            if value.get(name) is not None:
                _check(member, value[name], _member_path(path, name), errors)
    elif kind == "string" and isinstance(value, str):
        _check_bounds(len(value), "length", meta, value, path, errors)
        if shape.enum and value not in shape.enum:
            _fail(errors, value, path,
                  f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
        pattern = meta.get("pattern")
        compiled = _compiled(pattern) if pattern else None
        if compiled is not None and not compiled.fullmatch(value):
            _fail(errors, value, path,
                  f"Member must satisfy regular expression pattern: {pattern}")
    elif kind in ("integer", "long", "double", "float") and isinstance(value, int | float):
        _check_bounds(value, "value", meta, value, path, errors)
    elif kind == "list" and isinstance(value, list):
        _check_bounds(len(value), "length", meta, value, path, errors)
        for item in value:
            _check(shape.member, item, f"{path}.member", errors)
    elif kind == "map" and isinstance(value, dict):
        _check_bounds(len(value), "length", meta, value, path, errors)
        for key, item in value.items():
            _check(shape.key, key, f"{path}.key", errors)
            _check(shape.value, item, f"{path}.{key}", errors)


def _check_bounds(measure: float, what: str, meta: dict[str, Any], value: Any, path: str,
                  errors: list[str]) -> None:
    if "min" in meta and measure < meta["min"]:
        _fail(errors, value, path, f"Member must have {what} greater than or equal to "
                                   f"{meta['min']}")
    if "max" in meta and measure > meta["max"]:
        _fail(errors, value, path, f"Member must have {what} less than or equal to "
                                   f"{meta['max']}")
